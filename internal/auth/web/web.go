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
// WebAuthn origin its scope lists (WriteBundleWith, or copy static/ and
// set <meta name="keymesh-node">), so that no node operator serves the
// page the user's passkey signs for (docs/auth.md). The page calls the
// node directly (the node grants CORS to the scope's origins for the
// ceremonies, httpapi.CORS); given the cluster's sim platform key
// (Options.SimRoots) it verifies the node's attestation in the browser
// and seals every call in envelope's compatibility format, as
// production (sealed-only) nodes require. It verifies no hardware
// attestation (Nitro, SEV-SNP, TDX): it refuses such nodes. A node serves the same
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
	"regexp"
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

// Options say what the bundle talks to.
type Options struct {
	// Node is the node JSON-RPC URL the page posts to: an absolute http
	// or https URL, or "" for "/" of the page's own origin (an app that
	// forwards that path to a node). The page fetches the node's
	// attestation at "attestation" relative to it.
	Node string
	// SimRoots are the sim platform keys (64 hex digits each; `keymesh
	// cluster init` writes the cluster's to sim-platform-key) that must
	// sign the node's quote. With one, the page seals every call to the
	// node's attested key (production nodes accept nothing else); without,
	// it posts plain JSON-RPC (development nodes only). The page verifies
	// no hardware quote: it refuses a node on Nitro, SEV-SNP or TDX.
	SimRoots []string
	// Measurements are the node builds (64 hex digits each) the node may
	// run; empty: any build signed by a root.
	Measurements []string
}

var hex64 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Bundle returns the bundle's files with index.html naming endpoint
// (Options.Node), unsealed.
func Bundle(endpoint string) (map[string][]byte, error) {
	return BundleWith(Options{Node: endpoint})
}

// BundleWith returns the bundle's files with index.html carrying o.
func BundleWith(o Options) (map[string][]byte, error) {
	endpoint := o.Node
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return nil, fmt.Errorf("web: node endpoint %q: want an absolute http(s) URL", endpoint)
		}
	}
	for _, list := range [][]string{o.SimRoots, o.Measurements} {
		for _, h := range list {
			if !hex64.MatchString(h) {
				return nil, fmt.Errorf("web: %q: want 64 hex digits", h)
			}
		}
	}
	if len(o.Measurements) > 0 && len(o.SimRoots) == 0 {
		return nil, fmt.Errorf("web: measurements pinned but no platform key: the page would not seal")
	}
	metas := map[string]string{
		nodeMeta: endpoint,
		`<meta name="keymesh-sim-root" content="">`:    strings.ToLower(strings.Join(o.SimRoots, " ")),
		`<meta name="keymesh-measurement" content="">`: strings.ToLower(strings.Join(o.Measurements, " ")),
	}
	out := map[string][]byte{}
	for _, name := range BundleFiles {
		b, err := fs.ReadFile(files(), name)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		if name == "index.html" {
			s := string(b)
			for empty, v := range metas {
				if strings.Count(s, empty) != 1 {
					return nil, fmt.Errorf("web: index.html has no single %s", empty)
				}
				s = strings.Replace(s, empty, strings.Replace(empty, `content=""`, `content="`+html.EscapeString(v)+`"`, 1), 1)
			}
			b = []byte(s)
		}
		out[name] = b
	}
	return out, nil
}

// CSPFor is the Content-Security-Policy an app serves the bundle for
// node (Options.Node) with: CSP, with connect-src naming the node's
// origin too when it is another one than the page's.
func CSPFor(node string) string {
	u, err := url.Parse(node)
	if node == "" || err != nil || u.Host == "" {
		return CSP
	}
	origin := u.Scheme + "://" + u.Host
	return strings.Replace(CSP, "connect-src 'self'", "connect-src 'self' "+origin, 1)
}

// WriteBundle writes Bundle(endpoint) into dir (created if missing), for
// an app to serve from its own origin.
func WriteBundle(dir, endpoint string) error {
	return WriteBundleWith(dir, Options{Node: endpoint})
}

// WriteBundleWith writes BundleWith(o) into dir (created if missing).
func WriteBundleWith(dir string, o Options) error {
	fsys, err := BundleWith(o)
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
