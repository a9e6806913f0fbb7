package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/keymesh/keymesh/api"
)

// Handler runs one JSON-RPC method. params is the raw params member (an
// object or an array), or nil when the request had none.
//
// A Handler returns an *api.Error (possibly wrapped) for an outcome the
// client should see, such as api.CodeInvalidParams from DecodeParams; any
// other error is reported to the client as an internal error with a fixed
// message, and its text goes only to the node's log.
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Registry maps method names to handlers. Method groups add themselves with
// a Register… function each (see RegisterNode); the node calls those
// explicitly, there is no registration by init. Register all methods before
// serving: a Registry is not safe for concurrent modification.
type Registry struct {
	methods map[string]Handler
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{methods: make(map[string]Handler)}
}

// Register adds method name. It panics if name is empty or already
// registered, which is a wiring mistake found at startup.
func (r *Registry) Register(name string, h Handler) {
	if name == "" || h == nil {
		panic("httpapi: Register with empty name or nil handler")
	}
	if _, dup := r.methods[name]; dup {
		panic("httpapi: method " + name + " registered twice")
	}
	r.methods[name] = h
}

// Alias makes alias call the handler already registered as name (Passport's
// method names, for instance). It panics like Register.
func (r *Registry) Alias(alias, name string) {
	h, ok := r.methods[name]
	if !ok {
		panic("httpapi: alias " + alias + " for unknown method " + name)
	}
	r.Register(alias, h)
}

// Methods returns the registered names, sorted.
func (r *Registry) Methods() []string {
	names := make([]string, 0, len(r.methods))
	for n := range r.methods {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (r *Registry) lookup(name string) (Handler, bool) {
	h, ok := r.methods[name]
	return h, ok
}

// NoParams returns an invalid-params error unless params is absent, [] or {}.
func NoParams(params json.RawMessage) error {
	switch string(bytes.Join(bytes.Fields(params), nil)) {
	case "", "[]", "{}":
		return nil
	}
	return api.Errorf(api.CodeInvalidParams, "invalid params: this method takes none")
}

// DecodeParams decodes params into v, a pointer to a struct, strictly:
// params must be an object, or an array holding exactly one object, and the
// object must have no member that v does not name. Any failure is an
// *api.Error with api.CodeInvalidParams.
func DecodeParams(params json.RawMessage, v any) error {
	params = bytes.TrimSpace(params)
	if len(params) == 0 {
		return api.Errorf(api.CodeInvalidParams, "invalid params: missing")
	}
	if params[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(params, &arr); err != nil || len(arr) != 1 {
			return api.Errorf(api.CodeInvalidParams, "invalid params: expected an object or an array of one object")
		}
		params = bytes.TrimSpace(arr[0])
	}
	if len(params) == 0 || params[0] != '{' {
		return api.Errorf(api.CodeInvalidParams, "invalid params: expected an object")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.CodeInvalidParams, "invalid params: %s", describe(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Errorf(api.CodeInvalidParams, "invalid params: trailing data")
	}
	return nil
}

// describe turns a json decoding error into a message safe for clients
// (it names fields and types, never values).
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	return err.Error()
}
