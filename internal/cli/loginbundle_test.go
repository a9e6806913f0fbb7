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
