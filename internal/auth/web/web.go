// Package web is the node's passkey page (GET /login): a static HTML page
// and script, embedded in the binary, that registers a passkey for an
// account and authenticates with it through the browser's WebAuthn API
// (W3C Web Authentication Level 3, navigator.credentials.create/get),
// calling the node's JSON-RPC methods keymesh_initiate/complete
// Registration/Authentication. Authentication authorises a session key
// that the page generates with WebCrypto (ECDSA P-256, not extractable).
// No build step: the files are served as written.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the page at /login and its files under /login/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/login/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/login" || r.URL.Path == "/login/" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		files.ServeHTTP(w, r)
	})
}
