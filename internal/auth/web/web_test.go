package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, ctype, body string
		status            int
	}{
		{"/login/", "text/html", `<script src="login.js">`, 200},
		{"/login/login.js", "javascript", "navigator.credentials.create", 200},
		{"/login/login.css", "text/css", "font-family", 200},
		{"/login/nope.js", "", "", 404},
	} {
		resp, err := noRedirect.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
		}
		if tc.status == 200 {
			if !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.body) {
				t.Errorf("%s: %s %q", tc.path, resp.Header.Get("Content-Type"), b[:min(len(b), 80)])
			}
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP %q", tc.path, got)
		}
	}
	// /login redirects to /login/ (the page's links are relative), keeping
	// the query.
	resp, err := noRedirect.Get(srv.URL + "/login?scope=abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login/?scope=abc" {
		t.Fatalf("/login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCSP: the page's policy allows no inline style or script, no <base>
// and no form submission, and the page needs none (a policy that the
// page broke would leave it unstyled or dead in a browser).
func TestCSP(t *testing.T) {
	dirs := map[string]string{}
	for _, d := range strings.Split(CSP, ";") {
		f := strings.Fields(d)
		dirs[f[0]] = strings.Join(f[1:], " ")
	}
	for dir, want := range map[string]string{
		"default-src": "'none'", "script-src": "'self'", "style-src": "'self'",
		"base-uri": "'none'", "form-action": "'none'", "frame-ancestors": "'none'",
	} {
		if dirs[dir] != want {
			t.Errorf("%s %q, want %q", dir, dirs[dir], want)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", CSP)
	}
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for what, re := range map[string]string{
		"inline style element":   `(?i)<style`,
		"style attribute":        `(?i)\sstyle\s*=`,
		"inline script":          `(?i)<script(\s[^>]*)?>\s*[^<\s]`,
		"event handler":          `(?i)\son[a-z]+\s*=`,
		"base element":           `(?i)<base`,
		"absolute script source": `(?i)<script[^>]+src="/`,
	} {
		if regexp.MustCompile(re).Match(page) {
			t.Errorf("index.html has an %s, which the CSP forbids or the bundle cannot serve", what)
		}
	}
}

// TestBundle: the bundle names the node endpoint it is given, escaped,
// and refuses one that is not an absolute http(s) URL.
func TestBundle(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBundle(dir, "https://node.example:7100/?a=1&b=\"x\""); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<meta name="keymesh-node" content="https://node.example:7100/?a=1&amp;b=&#34;x&#34;">`) {
		t.Fatalf("index.html does not name the endpoint: %s", page)
	}
	for _, f := range BundleFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "login.js"))
	if !strings.Contains(string(js), `meta[name="keymesh-node"]`) || strings.Contains(string(js), `fetch("/"`) {
		t.Fatal("login.js does not post to the configured endpoint")
	}
	for _, bad := range []string{"/relative", "javascript:alert(1)", "node.example", "https://u:p@node.example/", "ftp://node.example/"} {
		if _, err := Bundle(bad); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
	if b, err := Bundle(""); err != nil || !strings.Contains(string(b["index.html"]), nodeMeta) {
		t.Fatalf("empty endpoint: %v", err)
	}
}

// TestBundleWith: the pins land in their meta elements (lower case), a
// malformed one or a measurement without a key is refused, and CSPFor
// adds only the node's origin to connect-src.
func TestBundleWith(t *testing.T) {
	root, meas := strings.Repeat("AB", 32), strings.Repeat("cd", 32)
	b, err := BundleWith(Options{Node: "https://node.example:7100/", SimRoots: []string{root}, Measurements: []string{meas, meas}})
	if err != nil {
		t.Fatal(err)
	}
	page := string(b["index.html"])
	for _, want := range []string{
		`<meta name="keymesh-node" content="https://node.example:7100/">`,
		`<meta name="keymesh-sim-root" content="` + strings.ToLower(root) + `">`,
		`<meta name="keymesh-measurement" content="` + meas + " " + meas + `">`,
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("index.html lacks %s", want)
		}
	}
	for _, bad := range []Options{
		{SimRoots: []string{"ab"}},
		{SimRoots: []string{root + `"><script>`}},
		{SimRoots: []string{root}, Measurements: []string{"zz"}},
		{Measurements: []string{meas}},
	} {
		if _, err := BundleWith(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if got := CSPFor("https://node.example:7100/rpc?x=1"); got != strings.Replace(CSP, "connect-src 'self'", "connect-src 'self' https://node.example:7100", 1) {
		t.Errorf("CSPFor: %s", got)
	}
	if CSPFor("") != CSP {
		t.Error("CSPFor(\"\") is not CSP")
	}
}
