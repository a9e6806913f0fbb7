package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// auditCluster runs a real 3-node cluster, makes auth records (a scope
// and accounts, replicated to every node), has node 1 sign its audit head
// and send it to its peers, stops the nodes and returns the cluster dir.
func auditCluster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: filepath.Join(dir, "c"), BasePort: porttest.Block(t, 6)})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteCluster(filepath.Join(dir, "c"), cfgs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var nodes []*node.Node
	var stops []func()
	for _, c := range cfgs {
		n, err := node.New(node.Options{Config: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowPlaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- n.Run(rctx) }()
		nodes = append(nodes, n)
		stops = append(stops, func() { cancel(); <-done })
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for _, n := range nodes {
		for deadline := time.Now().Add(10 * time.Second); n.Ready().Reachable < 3; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("cluster not ready in 10 s")
			}
		}
	}
	c, err := client.New(nodes[0].APIURL())
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := client.GenerateKey("ed25519")
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a1", "a2", "a3", "a4", "a5"} {
		k, _ := client.GenerateKey("p256")
		if _, err := c.RegisterDelegated(ctx, dev, sc.ID, a, k.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := nodes[0].PublishAuditHead(ctx); err != nil || h.Seq != 6 {
		t.Fatalf("publish: %v %v", h, err)
	}
	return filepath.Join(dir, "c")
}

// TestAuditVerify plays node 1's operator editing its own store after its
// head went to its peers: `keymesh audit verify` exits 1 and names the
// entry for a modified, a deleted and a reordered entry and for the whole
// chain rewritten, and passes the untouched chain.
func TestAuditVerify(t *testing.T) {
	dir := auditCluster(t)
	cfg := func(id int) string { return filepath.Join(dir, config.FileName(uint16(id))) }
	verify := func() (int, string, string) {
		return runCLI(t, "audit", "verify", "--config", cfg(1), "--peer-config", cfg(2), "--peer-config", cfg(3))
	}
	code, out, errOut := verify()
	if code != 0 || !strings.Contains(out, "ok: node 1's chain of 6 entries is intact; 2 heads") {
		t.Fatalf("untouched: exit %d\n%s%s", code, out, errOut)
	}

	c1, err := config.Load(cfg(1))
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(c1.DataDir, node.StoreFile)
	pristine, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tamper := func(t *testing.T, f func(st store.Store)) {
		t.Helper()
		if err := os.WriteFile(dbPath, pristine, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		f(st)
		st.Close()
	}
	get := func(st store.Store, seq uint64) (string, []byte) {
		k := audit.ChainKey(seq)
		b, err := st.Get(ctx, audit.NSChain, k)
		if err != nil {
			t.Fatal(err)
		}
		return k, b
	}
	for _, tc := range []struct {
		name, want string
		edit       func(st store.Store)
	}{
		{"modified", "entry 3: changed", func(st store.Store) {
			k, b := get(st, 3)
			e, _ := audit.DecodeEntry(b)
			e.Account = "someone-else"
			st.Put(ctx, audit.NSChain, k, e.Marshal())
		}},
		{"deleted", "entry 4: missing", func(st store.Store) {
			k, _ := get(st, 4)
			st.Delete(ctx, audit.NSChain, k)
		}},
		{"reordered", "entry 2: holds entry 3", func(st store.Store) {
			k2, b2 := get(st, 2)
			k3, b3 := get(st, 3)
			st.Put(ctx, audit.NSChain, k2, b3)
			st.Put(ctx, audit.NSChain, k3, b2)
		}},
		{"rewritten", "entry 1: rewritten: entry 6's hash differs from the head node 1 signed", func(st store.Store) {
			// A new chain of six entries, consistent link by link,
			// written through the log itself with its end updated.
			var olds []*audit.Entry
			for s := uint64(1); s <= 6; s++ {
				k, b := get(st, s)
				e, _ := audit.DecodeEntry(b)
				olds = append(olds, e)
				st.Delete(ctx, audit.NSChain, k)
			}
			st.Delete(ctx, audit.NSMeta, "head")
			l := audit.NewLog(st)
			for i, e := range olds {
				if i == 2 {
					continue // the entry the operator wants gone
				}
				l.Append(ctx, *e)
			}
			l.Append(ctx, *olds[5])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tamper(t, tc.edit)
			code, out, errOut := verify()
			if code != 1 || !strings.Contains(out, "bad: "+tc.want) || !strings.Contains(errOut, "first bad entry") {
				t.Fatalf("exit %d, want 1 naming %q\n%s%s", code, tc.want, out, errOut)
			}
		})
	}

	// Heads moved as files (keymesh audit heads on the peers) check the
	// same way.
	tamper(t, func(store.Store) {})
	headsFile := filepath.Join(t.TempDir(), "heads.jsonl")
	code, out, errOut = runCLI(t, "audit", "heads", "--config", cfg(2), "--node", "1")
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("heads: exit %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(headsFile, []byte(out), 0o600)
	if code, out, errOut := runCLI(t, "audit", "verify", "--config", cfg(1), "--heads", headsFile); code != 0 || !strings.Contains(out, "1 heads") {
		t.Fatalf("verify --heads: exit %d\n%s%s", code, out, errOut)
	}

	// export: JSON lines, all six, then none in the future.
	code, out, _ = runCLI(t, "audit", "export", "--config", cfg(1))
	if code != 0 || strings.Count(out, "\n") != 6 || !strings.Contains(out, `"method":"account.register"`) {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "audit", "export", "--config", cfg(1), "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if code != 0 || out != "" {
		t.Fatalf("export --since later: exit %d\n%s", code, out)
	}
}
