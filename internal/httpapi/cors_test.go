package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/envelope"
)

const (
	originA = "https://app-a.example"
	originB = "https://app-b.example"
)

// corsHandler is a sealing handler (plaintext allowed too) with CORS for
// scopes "a" (origin A) and "b" (origin B), a ceremony method, a method
// that is not one, and GET /attestation. ran counts the handler calls.
func corsHandler(t *testing.T, ran *atomic.Int64) (http.Handler, *sealedFixture) {
	t.Helper()
	f := &sealedFixture{x255: newHPKEKey(t, envelope.KEMX25519)}
	op, err := envelope.NewOpener(&envelope.MemoryNonceStore{}, 0, nil, f.x255)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.Register(api.MethodInitiateRegistration, func(context.Context, json.RawMessage) (any, error) {
		ran.Add(1)
		return "challenge", nil
	})
	reg.Register(api.AliasInitiateRegistration, func(context.Context, json.RawMessage) (any, error) {
		ran.Add(1)
		return "challenge", nil
	})
	reg.Register(api.MethodPersonalSign, func(context.Context, json.RawMessage) (any, error) {
		ran.Add(1)
		return "signature", nil
	})
	scopes := map[string][]string{"a": {originA}, "b": {originB}}
	h := NewHandler(Options{
		Registry: reg,
		Routes: []Route{{Pattern: "GET /attestation", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":""}`))
		})}},
		Sealing: &Sealing{AllowPlaintext: true, Openers: func(context.Context) (*envelope.Opener, *envelope.CompatOpener, error) {
			return op, nil, nil
		}},
		CORS: &CORS{Origins: func(_ context.Context, scope string) ([]string, error) {
			if o, ok := scopes[scope]; ok {
				return o, nil
			}
			return nil, api.Errorf(api.CodeAuthUnknown, "unknown scope")
		}},
	})
	return h, f
}

func rpcBody(methods ...string) string {
	var parts []string
	for i, m := range methods {
		parts = append(parts, `{"jsonrpc":"2.0","id":`+string(rune('1'+i))+`,"method":"`+m+`","params":{}}`)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestCORS: a scope's origin may read the answers to the passkey
// ceremonies (and GET /attestation), after a preflight that allows POST
// with the page's headers only; any other origin, method, header, path or
// JSON-RPC method gets no CORS header, so the browser keeps the answer
// from the page. Credentials are never allowed.
func TestCORS(t *testing.T) {
	var ran atomic.Int64
	h, f := corsHandler(t, &ran)
	ceremony, other := api.MethodInitiateRegistration, api.MethodPersonalSign
	pk := f.x255.PublicKey()

	type req struct {
		name    string
		method  string
		target  string
		origin  string
		headers map[string]string
		body    func() []byte
		// want: the Access-Control-Allow-Origin expected ("" none), and
		// the status.
		acao   string
		status int
	}
	plain := func(methods ...string) func() []byte {
		return func() []byte { return []byte(rpcBody(methods...)) }
	}
	sealed := func(m string) func() []byte {
		return func() []byte {
			env, _ := sealHPKE(t, pk, m, "a", rpcBody(m), time.Now())
			return env
		}
	}
	pre := func(acrm, acrh string) map[string]string {
		h := map[string]string{"Access-Control-Request-Method": acrm}
		if acrh != "" {
			h["Access-Control-Request-Headers"] = acrh
		}
		return h
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	sealedCT := map[string]string{"Content-Type": envelope.ContentType}
	for _, c := range []req{
		// Preflights.
		{name: "preflight granted", method: "OPTIONS", target: "/?scope=a", origin: originA, headers: pre("POST", "content-type"), acao: originA, status: 204},
		{name: "preflight with the compat header", method: "OPTIONS", target: "/?scope=a", origin: originA, headers: pre("POST", "Content-Type, X-Encrypted-Key"), acao: originA, status: 204},
		{name: "preflight from another scope's origin", method: "OPTIONS", target: "/?scope=a", origin: originB, headers: pre("POST", "content-type"), status: 403},
		{name: "preflight naming the other scope", method: "OPTIONS", target: "/?scope=b", origin: originA, headers: pre("POST", "content-type"), status: 403},
		{name: "preflight naming no scope", method: "OPTIONS", target: "/", origin: originA, headers: pre("POST", "content-type"), status: 403},
		{name: "preflight naming an unknown scope", method: "OPTIONS", target: "/?scope=zz", origin: originA, headers: pre("POST", "content-type"), status: 403},
		{name: "preflight from a look-alike origin", method: "OPTIONS", target: "/?scope=a", origin: originA + ".evil.example", headers: pre("POST", "content-type"), status: 403},
		{name: "preflight from an opaque origin", method: "OPTIONS", target: "/?scope=a", origin: "null", headers: pre("POST", "content-type"), status: 403},
		{name: "preflight for PUT", method: "OPTIONS", target: "/?scope=a", origin: originA, headers: pre("PUT", "content-type"), status: 403},
		{name: "preflight for the approval header", method: "OPTIONS", target: "/?scope=a", origin: originA, headers: pre("POST", "content-type, x-keymesh-auth"), status: 403},
		{name: "preflight for GET /attestation", method: "OPTIONS", target: "/attestation?scope=a", origin: originA, headers: pre("GET", "content-type"), status: 403},
		{name: "preflight for /healthz", method: "OPTIONS", target: "/healthz?scope=a", origin: originA, headers: pre("GET", ""), status: 405},
		// Answers.
		{name: "ceremony", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain(ceremony), acao: originA, status: 200},
		{name: "ceremony, Passport's name", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain(api.AliasInitiateRegistration), acao: originA, status: 200},
		{name: "batch of ceremonies", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain(ceremony, ceremony), acao: originA, status: 200},
		{name: "another method", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain(other), status: 200},
		{name: "another method in a batch of ceremonies", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain(ceremony, other), status: 200},
		{name: "unknown method", method: "POST", target: "/?scope=a", origin: originA, headers: jsonCT, body: plain("keymesh_nope"), status: 200},
		{name: "ceremony from another scope's origin", method: "POST", target: "/?scope=a", origin: originB, headers: jsonCT, body: plain(ceremony), status: 200},
		{name: "ceremony naming no scope", method: "POST", target: "/", origin: originA, headers: jsonCT, body: plain(ceremony), status: 200},
		{name: "sealed ceremony", method: "POST", target: "/?scope=a", origin: originA, headers: sealedCT, body: sealed(ceremony), acao: originA, status: 200},
		{name: "sealed other method", method: "POST", target: "/?scope=a", origin: originA, headers: sealedCT, body: sealed(other), status: 200},
		{name: "sealed request that does not open (a fixed refusal)", method: "POST", target: "/?scope=a", origin: originA, headers: sealedCT, body: func() []byte { return []byte("garbage") }, acao: originA, status: 400},
		{name: "attestation", method: "GET", target: "/attestation?scope=a", origin: originA, acao: originA, status: 200},
		{name: "attestation, another origin", method: "GET", target: "/attestation?scope=a", origin: originB, status: 200},
		{name: "healthz", method: "GET", target: "/healthz?scope=a", origin: originA, status: 200},
		{name: "no Origin (not a browser)", method: "POST", target: "/?scope=a", headers: jsonCT, body: plain(ceremony), status: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != nil {
				body = c.body()
			}
			r := httptest.NewRequest(c.method, c.target, bytes.NewReader(body))
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			before := ran.Load()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			res := w.Result()
			if res.StatusCode != c.status {
				t.Errorf("status %d, want %d", res.StatusCode, c.status)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != c.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, c.acao)
			}
			if v := res.Header.Get("Access-Control-Allow-Credentials"); v != "" {
				t.Errorf("Access-Control-Allow-Credentials %q", v)
			}
			if c.origin != "" && corsPath(r.URL.Path) && !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin (%v)", res.Header)
			}
			if c.method == "OPTIONS" {
				if ran.Load() != before {
					t.Error("a preflight ran a method")
				}
				granted := c.acao != ""
				if got := res.Header.Get("Access-Control-Allow-Methods"); (got == "POST") != granted {
					t.Errorf("Access-Control-Allow-Methods %q", got)
				}
				if got := res.Header.Get("Access-Control-Allow-Headers"); (got == CORSAllowHeaders) != granted {
					t.Errorf("Access-Control-Allow-Headers %q", got)
				}
				if got := res.Header.Get("Access-Control-Max-Age"); (got == CORSMaxAge) != granted {
					t.Errorf("Access-Control-Max-Age %q", got)
				}
			}
		})
	}
}

// TestCORSOff: a handler without Options.CORS answers no preflight and
// adds no CORS header, whatever the origin.
func TestCORSOff(t *testing.T) {
	reg := NewRegistry()
	reg.Register(api.MethodInitiateRegistration, func(context.Context, json.RawMessage) (any, error) { return "x", nil })
	h := NewHandler(Options{Registry: reg})
	for _, method := range []string{"OPTIONS", "POST"} {
		r := httptest.NewRequest(method, "/?scope=a", strings.NewReader(rpcBody(api.MethodInitiateRegistration)))
		r.Header.Set("Origin", originA)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if v := w.Result().Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("%s: Access-Control-Allow-Origin %q without CORS", method, v)
		}
	}
}

// TestCORSPreflightRateLimited: preflights are charged to the client
// address's bucket (each costs a scope lookup): over it, a 429 without
// CORS headers, and the store is not asked.
func TestCORSPreflightRateLimited(t *testing.T) {
	var lookups atomic.Int64
	h := NewHandler(Options{
		RateLimits: &RateLimits{Client: Rate{PerSecond: 0.001, Burst: 2}},
		CORS: &CORS{Origins: func(context.Context, string) ([]string, error) {
			lookups.Add(1)
			return []string{originA}, nil
		}},
	})
	for i, want := range []int{204, 204, 429, 429} {
		r := httptest.NewRequest("OPTIONS", "/?scope=a", nil)
		r.Header.Set("Origin", originA)
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Fatalf("preflight %d: %d, want %d", i, w.Code, want)
		}
		if got := w.Result().Header.Get("Access-Control-Allow-Origin"); (got != "") != (want == 204) {
			t.Fatalf("preflight %d: Access-Control-Allow-Origin %q", i, got)
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d scope lookups, want 2", n)
	}
}
