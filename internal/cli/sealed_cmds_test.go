package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
)

// TestScopeAndRegisterSealed: scope create and account register take the
// connection and credentials flags every node command takes, so against
// nodes started without --allow-plaintext (the production setting: only
// sealed requests are served) they seal their requests to the node's
// attested enclave and succeed. Unsealed, the node refuses them; sealed to
// another build, the client refuses the node.
func TestScopeAndRegisterSealed(t *testing.T) {
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: dir, BasePort: porttest.Block(t, 6)})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node.Node
	for _, c := range cfgs {
		n, err := node.New(node.Options{Config: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) // no AllowPlaintext
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { done <- n.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range nodes {
			<-done
		}
	}()
	url := nodes[0].APIURL()
	m := nodes[0].Enclave().Measurement().String()
	root := cfgs[0].SimPlatformKey
	sealed := []string{"--url", url, "--measurement", m, "--allow-simulated", "--platform-key", root}

	keyFile := filepath.Join(dir, "dev.key")
	mustRun(t, "scope", "keygen", "--out", keyFile, "--alg", "ed25519")
	scopeArgs := []string{"scope", "create", "--key-file", keyFile, "--rp-id", "localhost", "--origin", "http://localhost", "--mode", "developer"}

	// Unsealed: the node serves no plaintext.
	if out, errOut, code := run(t, append(scopeArgs, "--url", url)...); code == 0 {
		t.Fatalf("plaintext scope create succeeded against a node without --allow-plaintext:\n%s", out)
	} else {
		t.Logf("plaintext refused: %s", strings.TrimSpace(errOut))
	}
	// Sealed to a build the node does not run: the client refuses it.
	other := strings.Repeat("0a", 32)
	if _, errOut, code := run(t, append(scopeArgs, "--url", url, "--measurement", other, "--allow-simulated", "--platform-key", root)...); code == 0 || !strings.Contains(errOut, "measurement") {
		t.Fatalf("scope create sealed to another build: exit %d\n%s", code, errOut)
	}
	// A malformed --measurement is refused when the flag is parsed.
	if _, errOut, code := run(t, append(scopeArgs, "--url", url, "--measurement", "xyz")...); code == 0 || !strings.Contains(errOut, "--measurement") {
		t.Fatalf("bad --measurement: exit %d\n%s", code, errOut)
	}

	// Sealed: both commands succeed.
	out := mustRun(t, append(scopeArgs, sealed...)...)
	var sc api.Scope
	if err := json.Unmarshal([]byte(out), &sc); err != nil || sc.ID == "" || sc.Mode != "developer" {
		t.Fatalf("scope create printed %q: %v", out, err)
	}
	out = mustRun(t, append([]string{"account", "register", "--delegated", "--key-file", keyFile, "--scope", sc.ID, "--account", "carol"}, sealed...)...)
	if !strings.Contains(out, `"account": "carol"`) {
		t.Fatalf("account register printed %q", out)
	}
	// Trust on first use (--seal) with a known-nodes file works too, and
	// pins the node.
	known := filepath.Join(dir, "known_nodes.json")
	_, errOut, code := run(t, "account", "register", "--delegated", "--key-file", keyFile, "--scope", sc.ID, "--account", "dave",
		"--url", url, "--seal", "--allow-simulated", "--platform-key", root, "--known-nodes", known)
	if code != 0 || !strings.Contains(errOut, "first use") {
		t.Fatalf("account register --seal: exit %d\n%s", code, errOut)
	}
	// The registration is there: registering carol again is refused as a
	// duplicate (sealed, so the node answered).
	if _, errOut, code := run(t, append([]string{"account", "register", "--delegated", "--key-file", keyFile, "--scope", sc.ID, "--account", "carol"}, sealed...)...); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second registration of carol: exit %d\n%s", code, errOut)
	}
}
