package httpapi

import (
	"context"
	"encoding/json"
)

// Method is one JSON-RPC method a service serves: its name (an api.Method…
// constant), other names that call the same handler (Passport's, for
// instance), and the handler.
type Method struct {
	Name    string
	Aliases []string
	Handler Handler
}

// Handle adapts a service's typed method f to a Handler: params are
// decoded into a P with DecodeParams (strict; an *api.Error with
// api.CodeInvalidParams when they do not fit, and f is not called), and
// f's result and error are returned as they are. Every service's methods
// go through it, so that all of them decode params the same way.
func Handle[P, R any](f func(context.Context, P) (R, error)) Handler {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		var p P
		if err := DecodeParams(params, &p); err != nil {
			return nil, err
		}
		return f(ctx, p)
	}
}

// Add registers each of ms and its aliases. It panics like Register (a
// name registered twice is a wiring mistake found at startup).
func (r *Registry) Add(ms ...Method) {
	for _, m := range ms {
		r.Register(m.Name, m.Handler)
		for _, a := range m.Aliases {
			r.Alias(a, m.Name)
		}
	}
}

// List returns every registered name as a Method of its own (an alias is
// listed as a method with its handler), sorted by name: for a service
// whose package registers its methods on a Registry itself, to hand them
// to the node's seam.
func (r *Registry) List() []Method {
	names := r.Methods()
	out := make([]Method, len(names))
	for i, n := range names {
		out[i] = Method{Name: n, Handler: r.methods[n]}
	}
	return out
}
