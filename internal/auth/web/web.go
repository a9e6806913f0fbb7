// Package web is keymesh's passkey login page: a static HTML page,
// stylesheet and script (static/: index.html, login.css, login.js) that
// register a passkey for an account and authenticate with it through the
// browser's WebAuthn API (W3C Web Authentication Level 3,
// navigator.credentials.create/get), calling a node's JSON-RPC methods
// keymesh_initiate/complete Registration/Authentication. Authentication
// authorises a session key that the page generates with WebCrypto (ECDSA
// P-256, not extractable). No build step: the files are served as written.
//
// In production an app serves these files from its own origin, the
// WebAuthn origin its scope lists (WriteBundle, or copy static/ and set
// <meta name="keymesh-node">), so that no node operator serves the page
// the user's passkey signs for (docs/auth.md). A node serves the same
// page at /login (Handler) for development only: a scope must list the
// node's origin for it to work, which production clusters refuse
// (auth.OriginPolicy).
package web

import (
	"embed"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of the node's /login page, and the
// one an app serving the bundle should send (with the node endpoint's
// origin added to connect-src when it is not the page's own): scripts
// and styles only from the page's origin (no inline code or style), no
// <base> element, no form submission, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// BundleFiles are the bundle's files, under static/.
var BundleFiles = []string{"index.html", "login.css", "login.js"}

// nodeMeta is index.html's node endpoint element, empty in the embedded
// file (the page's own origin).
const nodeMeta = `<meta name="keymesh-node" content="">`

func files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler serves the development page at /login/ (and /login, which
// redirects there so that the page's relative links resolve) and its
// files under /login/.
func Handler() http.Handler {
	sub := files()
	fileServer := http.StripPrefix("/login/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch r.URL.Path {
		case "/login":
			u := url.URL{Path: "/login/", RawQuery: r.URL.RawQuery}
			http.Redirect(w, r, u.String(), http.StatusFound)
		case "/login/":
			http.ServeFileFS(w, r, sub, "index.html")
		default:
			fileServer.ServeHTTP(w, r)
		}
	})
}

// Bundle returns the bundle's files with index.html naming endpoint, the
// node JSON-RPC URL the page posts to: an absolute http or https URL,
// or "" for "/" of the page's own origin (an app that forwards that path
// to a node).
func Bundle(endpoint string) (map[string][]byte, error) {
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return nil, fmt.Errorf("web: node endpoint %q: want an absolute http(s) URL", endpoint)
		}
	}
	out := map[string][]byte{}
	for _, name := range BundleFiles {
		b, err := fs.ReadFile(files(), name)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		if name == "index.html" {
			s := string(b)
			if strings.Count(s, nodeMeta) != 1 {
				return nil, fmt.Errorf("web: index.html has no single %s", nodeMeta)
			}
			s = strings.Replace(s, nodeMeta, `<meta name="keymesh-node" content="`+html.EscapeString(endpoint)+`">`, 1)
			b = []byte(s)
		}
		out[name] = b
	}
	return out, nil
}

// WriteBundle writes Bundle(endpoint) into dir (created if missing), for
// an app to serve from its own origin.
func WriteBundle(dir, endpoint string) error {
	fsys, err := Bundle(endpoint)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	for _, name := range BundleFiles {
		if err := os.WriteFile(filepath.Join(dir, name), fsys[name], 0o644); err != nil {
			return fmt.Errorf("web: %w", err)
		}
	}
	return nil
}
