package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// auditNodes runs a real 3-node cluster and makes auth records through
// node 1 (a scope and five accounts, replicated to every node: entries 1
// to 6 of each chain). It returns the cluster's config dir, the nodes, a
// stop function for each (safe to call twice), and a function registering
// one more account.
func auditNodes(t *testing.T) (string, []*node.Node, []func(), func(name string)) {
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
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); <-done }) }
		stops = append(stops, stop)
		t.Cleanup(stop)
	}
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
	register := func(a string) {
		t.Helper()
		k, _ := client.GenerateKey("p256")
		if _, err := c.RegisterDelegated(ctx, dev, sc.ID, a, k.Public()); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"a1", "a2", "a3", "a4", "a5"} {
		register(a)
	}
	return filepath.Join(dir, "c"), nodes, stops, register
}

// auditCluster runs auditNodes, has node 1 sign its audit head and send it
// to its peers, stops the nodes and returns the cluster dir.
func auditCluster(t *testing.T) string {
	t.Helper()
	dir, nodes, stops, _ := auditNodes(t)
	if h, err := nodes[0].PublishAuditHead(context.Background()); err != nil || h.Seq != 6 {
		t.Fatalf("publish: %v %v", h, err)
	}
	for _, s := range stops {
		s()
	}
	return dir
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

// TestAuditVerifyOverNetwork: node 1 signs a head (entries 1–6), logs two
// more entries and stops; the head it signs at shutdown covers them. Its
// operator then rewrites its chain: `keymesh audit verify --network`
// fetches the heads nodes 2 and 3 hold over their APIs, checks them with
// the key they pin, and exits 1 naming the first rewritten entry — for the
// last two entries dropped and re-appended (which only the shutdown head
// covers) and for the whole chain rebuilt.
func TestAuditVerifyOverNetwork(t *testing.T) {
	dir, nodes, stops, register := auditNodes(t)
	ctx := context.Background()
	if h, err := nodes[0].PublishAuditHead(ctx); err != nil || h.Seq != 6 {
		t.Fatalf("publish: %v %v", h, err)
	}
	register("a6")
	register("a7") // entries 7 and 8: no head yet
	stops[0]()     // node 1 stops; nodes 2 and 3 keep serving
	cfg1 := filepath.Join(dir, config.FileName(1))
	verify := func() (int, string, string) { return runCLI(t, "audit", "verify", "--config", cfg1, "--network") }
	code, out, errOut := verify()
	if code != 0 || !strings.Contains(out, "ok: node 1's chain of 8 entries is intact") || !strings.Contains(out, "confirms entries up to 8") ||
		!strings.Contains(out, "node 2 (") || !strings.Contains(out, "node 3 (") {
		t.Fatalf("untouched, with the head signed at shutdown: exit %d\n%s%s", code, out, errOut)
	}

	c1, err := config.Load(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(c1.DataDir, node.StoreFile)
	pristine, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		from uint64
		want string
	}{
		{"last-two", 7, "first bad entry 7"},
		{"whole", 1, "first bad entry 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(dbPath, pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := sqlite.Open(dbPath)
			if err != nil {
				t.Fatal(err)
			}
			rebuildChain(t, st, tc.from, 8)
			st.Close()
			code, out, errOut := verify()
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, "bad: entry") {
				t.Fatalf("exit %d, want 1 and %q\n%s%s", code, tc.want, out, errOut)
			}
		})
	}
	// A peer that pins another key for node 1 (or lies about it) is not
	// believed: verify fails rather than checking heads with its key.
	code, out, errOut = runCLI(t, "audit", "verify", "--config", cfg1, "--network", "--identity-key", nodes[1].IdentityKey())
	if code != 1 || !strings.Contains(errOut, "pin different identity keys") {
		t.Fatalf("--identity-key of another node: exit %d\n%s%s", code, out, errOut)
	}
}

// rebuildChain rewrites entries from..to of the chain in st as its
// operator would: it removes them and appends them again through the log
// (every link holds), without the first of them and with the last twice,
// so the chain keeps its length.
func rebuildChain(t *testing.T, st store.Store, from, to uint64) {
	t.Helper()
	ctx := context.Background()
	var olds []*audit.Entry
	for s := from; s <= to; s++ {
		b, err := st.Get(ctx, audit.NSChain, audit.ChainKey(s))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := audit.DecodeEntry(b)
		olds = append(olds, e)
		st.Delete(ctx, audit.NSChain, audit.ChainKey(s))
	}
	// The chain's recorded end goes back to entry from-1 (package audit's
	// store layout: u64 seq ‖ hash).
	st.Delete(ctx, audit.NSMeta, "head")
	if from > 1 {
		b, err := st.Get(ctx, audit.NSChain, audit.ChainKey(from-1))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := audit.DecodeEntry(b)
		h := e.Hash()
		st.Put(ctx, audit.NSMeta, "head", append(binary.BigEndian.AppendUint64(nil, from-1), h[:]...))
	}
	l := audit.NewLog(st)
	for _, e := range append(olds[1:], olds[len(olds)-1]) {
		if _, err := l.Append(ctx, *e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditCrossCheck plays node 2 co-signing without logging it: the
// stores of a stopped real cluster get a signature logged by its gateway
// (node 1) and co-signer 3, naming node 2 too, but none on node 2.
// `keymesh audit crosscheck` exits 1 naming node 2 and the request; with
// node 2's entry present it passes.
func TestAuditCrossCheck(t *testing.T) {
	dir := auditCluster(t)
	ctx := context.Background()
	cfg := func(id int) string { return filepath.Join(dir, config.FileName(uint16(id))) }
	cross := func() (int, string, string) {
		return runCLI(t, "audit", "crosscheck", "--config", cfg(1), "--config", cfg(2), "--config", cfg(3), "--grace", "0")
	}
	if code, out, errOut := cross(); code != 0 || !strings.Contains(out, "ok: 18 entries of 3 nodes compared") {
		t.Fatalf("untouched: exit %d\n%s%s", code, out, errOut)
	}
	appendTo := func(id int, kind string) {
		c, err := config.Load(cfg(id))
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(filepath.Join(c.DataDir, node.StoreFile))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e := audit.Entry{Kind: kind, Scope: "s", Account: "a1", Method: "personal_sign", Signers: []uint16{1, 2, 3}, Outcome: audit.OutcomeOK}
		copy(e.Request[:], "request-00000001")
		if _, err := audit.NewLog(st).Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(1, audit.KindSign)
	appendTo(3, audit.KindCosign)
	code, out, errOut := cross()
	if code != 1 || !strings.Contains(out, "bad: node 2 has no entry for request 726571756573742d3030303030303031: node 1's entry 7 (wallet.sign") ||
		!strings.Contains(errOut, "first from node 2") {
		t.Fatalf("node 2 skipped: exit %d\n%s%s", code, out, errOut)
	}
	appendTo(2, audit.KindCosign)
	if code, out, errOut := cross(); code != 0 {
		t.Fatalf("node 2 logged it: exit %d\n%s%s", code, out, errOut)
	}
}
