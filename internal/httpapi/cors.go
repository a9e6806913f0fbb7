package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/envelope"
)

// CORS (Fetch Standard §3.2, "CORS protocol") lets the passkey login page
// that an app serves from its own origin (package auth/web) call a node
// directly: the four passkey ceremonies, and GET /attestation to learn the
// key it seals them to. Nothing else is ever readable cross-origin.
//
// The page names its scope in the query string (POST /?scope=ID, GET
// /attestation?scope=ID): the request's Origin must be one of that
// scope's WebAuthn origins (from this node's auth state), so an answer
// costs one scope lookup, not a scan of every scope. Then:
//
//   - a preflight (OPTIONS /) for POST with at most the headers the page
//     sends (CORSAllowHeaders) is granted with Access-Control-Allow-Origin
//     echoing the Origin, Allow-Methods POST, Allow-Headers, Max-Age;
//   - the answer to a POST carries Access-Control-Allow-Origin only when
//     every JSON-RPC method it ran is a ceremony (CORSMethods), or none ran
//     (a refusal before dispatch: a fixed error message); the methods of a
//     sealed request are known once it opened, so this is decided when the
//     answer is written;
//   - the answer to GET /attestation (a public document) carries it.
//
// Anything else — another origin, method, path or header, a batch holding
// any other method — gets no CORS header, so the browser keeps the answer
// from the page. Credentials mode is never allowed (no
// Access-Control-Allow-Credentials): the node has no cookies, and a page
// can send nothing a script outside a browser could not.
//
// This is not what stops a page from acting for a user: anyone can create
// a scope listing their own origin. The WebAuthn checks do (the assertion's
// clientDataJSON names the page's origin, which must be one of the origins
// of the scope the ceremony is for), and every approval is checked by every
// signer. CORS only decides which answers a page may read.
type CORS struct {
	// Origins returns the WebAuthn origins of scope; an unknown scope is
	// nil (or an error: either way, no CORS).
	Origins func(ctx context.Context, scope string) ([]string, error)
}

// CORSMethods are the JSON-RPC methods whose answers a scope's origins may
// read: the passkey ceremonies, under their keymesh_ names and Passport's
// aliases.
var CORSMethods = []string{
	api.MethodInitiateRegistration, api.MethodCompleteRegistration,
	api.MethodInitiateAuthentication, api.MethodCompleteAuthentication,
	api.AliasInitiateRegistration, api.AliasCompleteRegistration,
	api.AliasInitiateAuthentication, api.AliasCompleteAuthentication,
}

// CORSAllowHeaders are the request headers a page may send: the JSON-RPC
// or sealed content type, and compatibility mode's wrapped key.
const CORSAllowHeaders = "Content-Type, " + envelope.HeaderEncryptedKey

// CORSMaxAge is how long (seconds) a browser may keep a granted preflight.
const CORSMaxAge = "600"

// corsPaths are the paths CORS may answer for.
func corsPath(p string) bool { return p == "/" || p == "/attestation" }

// corsAllowed says whether origin is one of the origins of the scope r
// names in its query string.
func (c *CORS) allowed(r *http.Request, origin string) bool {
	scope := r.URL.Query().Get("scope")
	if origin == "" || origin == "null" || scope == "" || len(scope) > 128 {
		return false
	}
	origins, err := c.Origins(r.Context(), scope)
	return err == nil && slices.Contains(origins, origin)
}

// servePreflight answers OPTIONS / (the caller checked the path and that
// the request has an Origin). A refusal is a 403 without CORS headers.
func (c *CORS) servePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if r.URL.Path != "/" || r.Header.Get("Access-Control-Request-Method") != http.MethodPost ||
		!corsHeadersAllowed(r.Header.Get("Access-Control-Request-Headers")) || !c.allowed(r, origin) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", CORSAllowHeaders)
	h.Set("Access-Control-Max-Age", CORSMaxAge)
	w.WriteHeader(http.StatusNoContent)
}

// servePreflight answers a preflight, charged to the client address's
// rate limit (each costs a scope lookup): over it, a 429 without CORS
// headers.
func (h *handler) servePreflight(w http.ResponseWriter, r *http.Request) {
	if h.limiter != nil {
		if e := h.limiter.admit(ClientSource(r.Context()), "", ""); e != nil {
			w.Header().Add("Vary", "Origin")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}
	h.CORS.servePreflight(w, r)
}

// corsHeadersAllowed says whether every header named in an
// Access-Control-Request-Headers value is one of CORSAllowHeaders.
func corsHeadersAllowed(v string) bool {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !strings.EqualFold(name, "content-type") && !strings.EqualFold(name, envelope.HeaderEncryptedKey) {
			return false
		}
	}
	return true
}

// corsWriter adds Access-Control-Allow-Origin to an answer when it is
// written, if the methods that ran (recorded by handler.run) allow it.
type corsWriter struct {
	http.ResponseWriter
	origin  string
	methods *[]string // nil: GET /attestation, always readable
	done    bool
}

func (w *corsWriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		if w.methods == nil || !slices.ContainsFunc(*w.methods, func(m string) bool { return !slices.Contains(CORSMethods, m) }) {
			w.Header().Set("Access-Control-Allow-Origin", w.origin)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *corsWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// cors is ServeHTTP's hook: it says whether r is a CORS preflight for
// CORS.servePreflight to answer, and otherwise returns the writer to serve
// r with (w itself when no CORS applies).
func (h *handler) cors(w http.ResponseWriter, r *http.Request, methods *[]string) (_ http.ResponseWriter, preflight bool) {
	origin := r.Header.Get("Origin")
	if h.CORS == nil || origin == "" || !corsPath(r.URL.Path) {
		return w, false
	}
	if r.Method == http.MethodOptions {
		return w, true
	}
	w.Header().Add("Vary", "Origin")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/" && h.CORS.allowed(r, origin):
		return &corsWriter{ResponseWriter: w, origin: origin, methods: methods}, false
	case r.Method == http.MethodGet && r.URL.Path == "/attestation" && h.CORS.allowed(r, origin):
		return &corsWriter{ResponseWriter: w, origin: origin}, false
	}
	return w, false
}
