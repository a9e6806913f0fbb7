package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginBundleCmd: keymesh login-bundle writes the three files with
// the node endpoint in index.html's meta element, escaped (a URL crafted
// to close the attribute adds no markup), and refuses a missing --out or
// a node URL that is not absolute http(s) (a javascript: URL, for one)
// without writing anything.
func TestLoginBundleCmd(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := NewRoot(&out, &errb)
		root.SetArgs(append([]string{"login-bundle"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	dir := filepath.Join(t.TempDir(), "public", "login")
	out, err := run("--out", dir, "--node", "https://node1.example/rpc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, dir) || !strings.Contains(out, "Content-Security-Policy: default-src 'none'") {
		t.Fatalf("output: %q", out)
	}
	for _, name := range []string{"index.html", "login.css", "login.js"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	index, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !strings.Contains(string(index), `<meta name="keymesh-node" content="https://node1.example/rpc">`) {
		t.Fatal("index.html does not name the node endpoint")
	}

	// A URL that tries to break out of the attribute is escaped.
	dir2 := filepath.Join(t.TempDir(), "b")
	if _, err := run("--out", dir2, "--node", `https://node1.example/"><script>alert(1)</script>`); err != nil {
		t.Fatal(err)
	}
	index, _ = os.ReadFile(filepath.Join(dir2, "index.html"))
	if strings.Contains(string(index), "<script>alert(1)") {
		t.Fatal("the node URL injected markup into index.html")
	}

	for _, bad := range [][]string{
		{"--node", "https://node1.example/"},                                        // no --out
		{"--out", filepath.Join(t.TempDir(), "c"), "--node", "javascript:alert(1)"}, // not http(s)
		{"--out", filepath.Join(t.TempDir(), "d"), "--node", "node1.example"},       // not absolute
		{"--out", filepath.Join(t.TempDir(), "e"), "extra"},                         // stray argument
	} {
		if _, err := run(bad...); err == nil {
			t.Fatalf("login-bundle %v: no error", bad)
		}
		for i, a := range bad {
			if a == "--out" {
				if _, err := os.Stat(bad[i+1]); !os.IsNotExist(err) {
					t.Fatalf("login-bundle %v wrote %s", bad, bad[i+1])
				}
			}
		}
	}
}

// TestLoginBundleSealed: --platform-key (or --cluster-dir, reading
// sim-platform-key) and --measurement are written into index.html's pin
// elements, the printed CSP keeps default-src 'none' and no unsafe
// source and names the node's origin in connect-src, and a malformed key
// or measurement writes nothing.
func TestLoginBundleSealed(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := NewRoot(&out, &errb)
		root.SetArgs(append([]string{"login-bundle"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	root, meas := strings.Repeat("1f", 32), strings.Repeat("2e", 32)
	cluster := t.TempDir()
	if err := os.WriteFile(filepath.Join(cluster, "sim-platform-key"), []byte(root+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{{"--platform-key", root}, {"--cluster-dir", cluster}} {
		dir := filepath.Join(t.TempDir(), "login")
		out, err := run(append([]string{"--out", dir, "--node", "https://node1.example:7100/", "--measurement", meas}, flags...)...)
		if err != nil {
			t.Fatalf("%v: %v", flags, err)
		}
		index, _ := os.ReadFile(filepath.Join(dir, "index.html"))
		for _, want := range []string{
			`<meta name="keymesh-sim-root" content="` + root + `">`,
			`<meta name="keymesh-measurement" content="` + meas + `">`,
		} {
			if !strings.Contains(string(index), want) {
				t.Fatalf("%v: index.html lacks %s", flags, want)
			}
		}
		i := strings.Index(out, "Content-Security-Policy: ")
		if i < 0 {
			t.Fatalf("no CSP printed: %q", out)
		}
		csp := strings.TrimSpace(out[i+len("Content-Security-Policy: "):])
		if !strings.HasPrefix(csp, "default-src 'none';") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "connect-src 'self' https://node1.example:7100;") {
			t.Fatalf("CSP %q", csp)
		}
		if !strings.Contains(out, "seals its calls") {
			t.Fatalf("output does not say the page seals: %q", out)
		}
	}
	for _, bad := range [][]string{
		{"--platform-key", "abcd"},
		{"--platform-key", root, "--measurement", "xyz"},
		{"--measurement", meas}, // a build pinned, but nothing to verify it with
		{"--cluster-dir", filepath.Join(cluster, "missing")},
	} {
		dir := filepath.Join(t.TempDir(), "x")
		if _, err := run(append([]string{"--out", dir, "--node", "https://node1.example/"}, bad...)...); err == nil {
			t.Fatalf("%v: no error", bad)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%v: wrote %s", bad, dir)
		}
	}
}
