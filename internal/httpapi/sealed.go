package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/envelope"
)

// Sealed requests (docs/enclave.md, package envelope). A client seals the
// whole JSON-RPC body, with its approval proofs, to the node's attested
// enclave keys, so that nothing between it and the enclave reads either:
//
//   - HPKE mode: Content-Type application/keymesh-sealed, the body is an
//     envelope whose sealed payload is a SealedCall in JSON; the response
//     is a SealedReply in JSON (the HTTP status and the JSON-RPC response)
//     sealed with envelope.Opened.SealResponse, same content type.
//   - compatibility mode (Passport's format): an X-Encrypted-Key header and
//     a JSON object of sealed string fields: "rpc" (the JSON-RPC body) and,
//     if any, "auth" (the proofs); the response is a JSON object with the
//     sealed fields "rpc" and "status" (plus envelope's meta field).
//
// The envelope's method binding is SealedMethod of the JSON-RPC body, and its
// scope is handed to the handlers (SealedScope). A request that does not
// open is answered in plaintext with a JSON-RPC error whose code names the
// reason (api.CodeSealed…) and reaches no handler; clients must treat such
// an answer as unauthenticated (anyone on the path can write one). Every
// answer to a request that opened is sealed, errors included.

// Sealing configures sealed requests in Options.
type Sealing struct {
	// AllowPlaintext accepts unsealed requests too: the node's dev flag.
	AllowPlaintext bool
	// Openers returns the node's openers (the node may create its keys on
	// the first call). An error is an internal error.
	Openers func(ctx context.Context) (*envelope.Opener, *envelope.CompatOpener, error)
}

// SealedCall is the plaintext inside an HPKE-sealed request (api.SealedCall).
type SealedCall = api.SealedCall

// Compatibility-mode field names (api.CompatField…).
const (
	CompatFieldRPC    = api.CompatFieldRPC
	CompatFieldAuth   = api.CompatFieldAuth
	CompatFieldStatus = api.CompatFieldStatus
)

// EncodeSealedCall is api.EncodeSealedCall.
func EncodeSealedCall(c SealedCall) ([]byte, error) { return api.EncodeSealedCall(c) }

// DecodeSealedCall is api.DecodeSealedCall.
func DecodeSealedCall(b []byte) (SealedCall, error) { return api.DecodeSealedCall(b) }

// SealedMethod is api.SealedMethod.
func SealedMethod(rpc []byte) string { return api.SealedMethod(rpc) }

type scopeKey struct{}

// SealedScope returns the scope id a sealed request was bound to by its
// client (envelope header), or "" for a plaintext request. Handlers that
// act in a scope compare it with the scope they authorize.
func SealedScope(ctx context.Context) string {
	v, _ := ctx.Value(scopeKey{}).(string)
	return v
}

// WithSealedScope returns ctx carrying scope as SealedScope: what the
// sealed-request handler does once the envelope opened, and what tests of
// handlers use to stand for a sealed request.
func WithSealedScope(ctx context.Context, scope string) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope)
}

type modeKey struct{}

// RequestMode returns how the request being served was protected.
func RequestMode(ctx context.Context) envelope.Mode {
	v, _ := ctx.Value(modeKey{}).(envelope.Mode)
	return v
}

// envelopeError maps an opener's error to the client-visible error.
func envelopeError(err error) *api.Error {
	for _, c := range []struct {
		err  error
		code int
	}{
		{envelope.ErrMalformed, api.CodeSealedMalformed},
		{envelope.ErrUnknownKey, api.CodeSealedUnknownKey},
		{envelope.ErrHeader, api.CodeSealedHeader},
		{envelope.ErrCiphertext, api.CodeSealedCiphertext},
		{envelope.ErrExpired, api.CodeSealedExpired},
		{envelope.ErrReplay, api.CodeSealedReplay},
		{envelope.ErrBinding, api.CodeSealedBinding},
		{envelope.ErrPlaintext, api.CodePlaintextRefused},
	} {
		if errors.Is(err, c.err) {
			return api.Errorf(c.code, "%s", c.err.Error())
		}
	}
	return nil
}

// serveSealed serves a request on a node with Sealing set. Once a request
// has opened, every answer to it — a result, a JSON-RPC error, a refusal of
// what is inside — is sealed, with its HTTP status inside (SealedReply);
// only a request that does not open is answered in plaintext.
func (h *handler) serveSealed(w http.ResponseWriter, r *http.Request, body []byte) {
	ctx := r.Context()
	mode := envelope.DetectMode(r.Header)
	ctx = context.WithValue(ctx, modeKey{}, mode)
	// The nonce store charges each request to its source (ServeHTTP put
	// the client address in ctx), so that one address cannot fill it
	// (envelope.MemoryNonceStore).
	refusal := func(err error) *api.Error {
		e := envelopeError(err)
		if e == nil {
			h.Logger.ErrorContext(ctx, "sealed request", "request_id", RequestID(ctx), "err", err)
			e = api.Errorf(api.CodeInternalError, "internal error")
		} else {
			h.Logger.InfoContext(ctx, "sealed request refused", "request_id", RequestID(ctx), "mode", mode.String(), "err", err)
		}
		h.count(ctx, "sealed", e.Code, 0)
		return e
	}
	refuse := func(err error) {
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, refusal(err)))
	}
	if err := envelope.Admit(mode, h.Sealing.AllowPlaintext); err != nil {
		refuse(err)
		return
	}
	if mode == envelope.ModePlaintext {
		h.servePlain(w, r.WithContext(ctx), body)
		return
	}
	hpkeOpener, compatOpener, err := h.Sealing.Openers(ctx)
	if err != nil {
		refuse(err)
		return
	}
	// serve runs the opened call (rpc, auth) bound to method and scope
	// (check), and returns the status and the JSON-RPC response to seal.
	serve := func(rpc []byte, auth string, check func(method, scope string) error, scope string) (int, any) {
		if e := checkInner(rpc); e != nil {
			return http.StatusRequestEntityTooLarge, errorResponse(nil, e)
		}
		if err := check(SealedMethod(rpc), scope); err != nil {
			return http.StatusBadRequest, errorResponse(nil, refusal(err))
		}
		status, resp, _ := h.dispatch(WithSealedScope(withProofs(ctx, auth), scope), rpc)
		return sealedStatus(status), resp
	}
	switch mode {
	case envelope.ModeHPKE:
		req, err := hpkeOpener.Open(ctx, body)
		busy := errors.Is(err, envelope.ErrBusy) && req != nil
		if err != nil && !busy {
			refuse(err)
			return
		}
		var (
			status int
			resp   any
		)
		if busy {
			status, resp = busyRefusal(h, ctx, mode)
		} else if call, err := DecodeSealedCall(req.Body); err != nil {
			status, resp = http.StatusBadRequest, errorResponse(nil, refusal(fmt.Errorf("%w: %v", envelope.ErrMalformed, err)))
		} else {
			status, resp = serve(call.RPC, call.Auth, req.Check, req.Scope)
		}
		reply, err := EncodeSealedReply(SealedReply{Status: status, RPC: marshalResponse(resp)})
		if err == nil {
			var out []byte
			if out, err = req.SealResponse(reply); err == nil {
				w.Header().Set("Content-Type", envelope.ContentType)
				w.WriteHeader(status)
				w.Write(out)
				return
			}
		}
		refuse(err)
	case envelope.ModeCompat:
		fields, err := decodeCompatBody(body)
		if err != nil {
			refuse(err)
			return
		}
		req, err := compatOpener.Open(ctx, r.Header.Get(envelope.HeaderEncryptedKey), fields)
		busy := errors.Is(err, envelope.ErrBusy) && req != nil
		if err != nil && !busy {
			refuse(err)
			return
		}
		var (
			status int
			resp   any
		)
		rpc, auth := req.Fields[CompatFieldRPC], req.Fields[CompatFieldAuth]
		unknown := ""
		for name := range req.Fields {
			if name != CompatFieldRPC && name != CompatFieldAuth {
				unknown = name
			}
		}
		switch {
		case busy:
			status, resp = busyRefusal(h, ctx, mode)
		case unknown != "":
			status, resp = http.StatusBadRequest, errorResponse(nil, refusal(fmt.Errorf("%w: unknown field %q", envelope.ErrMalformed, unknown)))
		case len(rpc) == 0:
			status, resp = http.StatusBadRequest, errorResponse(nil, refusal(fmt.Errorf("%w: no %q field", envelope.ErrMalformed, CompatFieldRPC)))
		default:
			status, resp = serve(rpc, string(auth), req.Check, req.Scope)
		}
		out, err := req.SealResponse(map[string][]byte{
			CompatFieldRPC:    marshalResponse(resp),
			CompatFieldStatus: []byte(strconv.Itoa(status)),
		})
		if err != nil {
			refuse(err)
			return
		}
		writeJSON(w, status, out)
	}
}

// busyRefusal is the answer to a request that opened but whose source is
// over its share of the nonce store (envelope.ErrBusy): 429 with
// api.CodeRateLimited (limit "sealed-client"; retry once the source's
// nonces expire, at most the replay window and the clock skew allowed),
// sealed like any answer to a request that opened, so the client knows
// authentically that the call did not run. (Before issue 16 a full nonce
// store was an internal error, -32603.)
func busyRefusal(h *handler, ctx context.Context, mode envelope.Mode) (int, any) {
	h.Logger.InfoContext(ctx, "sealed request refused: source over its share of the nonce store",
		"request_id", RequestID(ctx), "mode", mode.String(), "source", envelope.Source(ctx))
	e := api.RateLimited("sealed-client", envelope.DefaultWindow+envelope.MaxSkew)
	e.Message = "too many sealed requests from your address within the replay window; " + e.Message
	h.count(ctx, "sealed", e.Code, 0)
	return http.StatusTooManyRequests, errorResponse(nil, e)
}

// SourceOf is the source a request's nonce is charged to: the host of its
// remote address, or its /64 for IPv6 (one subscriber's usual allocation).
// A node behind a reverse proxy sees the proxy's address for every request;
// the proxy must then limit per client itself.
func SourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// SealedReply is the plaintext of a sealed response (api.SealedReply).
type SealedReply = api.SealedReply

// EncodeSealedReply is api.EncodeSealedReply.
func EncodeSealedReply(r SealedReply) ([]byte, error) { return api.EncodeSealedReply(r) }

// DecodeSealedReply is api.DecodeSealedReply.
func DecodeSealedReply(b []byte) (SealedReply, error) { return api.DecodeSealedReply(b) }

// ParseCompatStatus is api.ParseCompatStatus.
func ParseCompatStatus(b []byte) (int, error) { return api.ParseCompatStatus(b) }

// sealedBodyLimit is the HTTP body limit of a request: api.MaxBodyBytes
// for plaintext, and room for the envelope's framing and for base64
// (compatibility mode) around a JSON-RPC body of api.MaxBodyBytes; the
// opened body is held to api.MaxBodyBytes again (checkInner).
func sealedBodyLimit(h http.Header) int64 {
	switch envelope.DetectMode(h) {
	case envelope.ModeHPKE:
		return api.MaxBodyBytes + api.MaxBodyBytes/8 + 64<<10
	case envelope.ModeCompat:
		return api.MaxBodyBytes*3/2 + 64<<10
	}
	return api.MaxBodyBytes
}

// checkInner holds an opened JSON-RPC body to the plaintext limit.
func checkInner(rpc []byte) *api.Error {
	if len(rpc) > api.MaxBodyBytes {
		return api.Errorf(api.CodeLimitExceeded, "request body larger than %d bytes", api.MaxBodyBytes)
	}
	return nil
}

// decodeCompatBody decodes a compatibility-mode body: one JSON object of
// strings, nothing else.
func decodeCompatBody(body []byte) (map[string]string, error) {
	var fields map[string]string
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: body is not a JSON object of strings", envelope.ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the body", envelope.ErrMalformed)
	}
	return fields, nil
}

// marshalResponse encodes a dispatch result; nil (only notifications) is
// the empty body.
func marshalResponse(v any) []byte {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("httpapi: marshal %T: %v", v, err))
	}
	return b
}

// sealedStatus: a sealed response always has a body (the sealed empty
// response of a notification), so 204 becomes 200.
func sealedStatus(status int) int {
	if status == http.StatusNoContent {
		return http.StatusOK
	}
	return status
}
