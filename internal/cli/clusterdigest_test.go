package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/config"
)

// TestClusterDigest: cluster init prints the policy digest; `cluster
// digest` prints the same for every node's file, and names the field in
// which an edited file differs, failing.
func TestClusterDigest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := run("cluster", "init", "--nodes", "3", "--threshold", "2", "--out", dir, "--host", "127.0.0.1", "--host", "127.0.0.2", "--host", "127.0.0.3")
	if code != 0 {
		t.Fatalf("cluster init: %s", out)
	}
	files := []string{filepath.Join(dir, "node-1.json"), filepath.Join(dir, "node-2.json"), filepath.Join(dir, "node-3.json")}
	n1, err := config.Load(files[0])
	if err != nil {
		t.Fatal(err)
	}
	want := n1.PolicyDigest().String()
	if !strings.Contains(out, "cluster policy digest (every node must show the same: keymesh cluster digest): "+want) {
		t.Fatalf("cluster init does not print the digest %s:\n%s", want, out)
	}

	out, code = run("cluster", "digest", "--config", files[0], "--config", files[1], "--config", files[2])
	if code != 0 || strings.Count(out, want+"  ") != 3 || strings.Contains(out, "differs") {
		t.Fatalf("same policy: exit %d:\n%s", code, out)
	}

	// Node 3's operator turns production on, on that node alone.
	var raw map[string]any
	b, err := os.ReadFile(files[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	raw["production"], raw["node_hosts"] = true, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(files[2], b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run("cluster", "digest", "--config", files[0], "--config", files[2], "--show")
	if code == 0 || !strings.Contains(out, files[2]+" differs from "+files[0]+" in: production, node_hosts") ||
		!strings.Contains(out, "1 of 1 configs differ") || !strings.Contains(out, `"production": true`) {
		t.Fatalf("edited node 3: exit %d:\n%s", code, out)
	}
	if _, code := run("cluster", "digest"); code == 0 {
		t.Fatal("no --config accepted")
	}
}
