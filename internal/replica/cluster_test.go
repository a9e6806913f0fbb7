package replica

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/postgres"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/transport"
)

// signedApplier is the test's Applier: a record is sig(64) ‖ payload, an
// Ed25519 signature under the key pinned in the test, and the payload is
// "key=value" or "key=value^parent", which also requires key parent to be
// set already. Applying writes key → value in namespace "test/state";
// writing a key twice with another value is invalid (first write wins).
type signedApplier struct{ pub ed25519.PublicKey }

const nsState = "test/state"

func (a signedApplier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	if len(rec) < ed25519.SignatureSize+1 {
		return fmt.Errorf("%w: too short", ErrInvalid)
	}
	sig, payload := rec[:ed25519.SignatureSize], rec[ed25519.SignatureSize:]
	if !ed25519.Verify(a.pub, payload, sig) {
		return fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	kv, parent, hasParent := strings.Cut(string(payload), "^")
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	if hasParent {
		if _, err := tx.Get(ctx, nsState, parent); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: unknown parent %q", ErrInvalid, parent)
		} else if err != nil {
			return err
		}
	}
	old, err := tx.Get(ctx, nsState, k)
	switch {
	case err == nil && string(old) == v:
		return nil // already applied
	case err == nil:
		return fmt.Errorf("%w: %q is already set", ErrInvalid, k)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return tx.Put(ctx, nsState, k, []byte(v))
}

// acceptAll is a malicious node's Applier: it stores whatever it is given.
type acceptAll struct{}

func (acceptAll) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	return tx.Put(ctx, nsState, fmt.Sprintf("forged-%x", RecordID(rec).Short()), rec)
}

type tnode struct {
	cfg    *config.Node
	ident  *config.Identity
	st     store.Store
	tr     *transport.Transport
	r      *Replica
	cancel context.CancelFunc
	done   chan struct{}
}

// cluster is a 3-node threshold-2 cluster of real transports on loopback
// sockets, each with its own SQLite store.
type cluster struct {
	t     testing.TB
	cfgs  []*config.Node
	nodes []*tnode
	priv  ed25519.PrivateKey
	app   signedApplier
	pg    map[int]*pgxpool.Config // nodes (0-based) whose store is PostgreSQL
	// catchUpEvery is the replicas' CatchUpInterval (default 1 s).
	catchUpEvery time.Duration
}

func newCluster(t testing.TB) *cluster { return newClusterPG(t) }

// newClusterPG is newCluster with the nodes pgNodes (0-based) on
// PostgreSQL, each in a schema of its own, dropped when the test ends.
func newClusterPG(t testing.TB, pgNodes ...int) *cluster {
	t.Helper()
	pg := map[int]*pgxpool.Config{}
	if len(pgNodes) > 0 {
		dsn := os.Getenv("KEYMESH_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL tests need a server: set KEYMESH_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/test sets it when one answers on 127.0.0.1:5432)")
		}
		admin, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close(context.Background()) })
		for _, i := range pgNodes {
			var b [6]byte
			rand.Read(b[:])
			schema := fmt.Sprintf("km_test_replica_%x_%d", b, i+1)
			if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			// Registered before the cluster's cleanup, so it runs after it.
			t.Cleanup(func() {
				if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
					t.Errorf("dropping schema %s: %v", schema, err)
				}
			})
			cfg, err := pgxpool.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.RuntimeParams["search_path"] = schema
			pg[i] = cfg
		}
	}
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	lns := make([]net.Listener, len(cfgs))
	for i := range cfgs {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cfgs {
		c.PeerListen = lns[c.ID-1].Addr().String()
		for j := range c.Peers {
			c.Peers[j].PeerAddr = lns[c.Peers[j].ID-1].Addr().String()
		}
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, cfgs: cfgs, nodes: make([]*tnode, len(cfgs)), priv: priv, app: signedApplier{pub}, pg: pg}
	for i := range cfgs {
		c.start(i, lns[i], c.app, true)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

// start starts node i (0-based) on ln with applier a; run says whether its
// replica runs (catch-up on start, periodically and on link-up).
func (c *cluster) start(i int, ln net.Listener, a Applier, run bool) {
	t := c.t
	t.Helper()
	cfg := c.cfgs[i]
	if ln == nil {
		var err error
		for range 50 { // the old listener's port may take a moment to free
			if ln, err = net.Listen("tcp", cfg.PeerListen); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ident, _, err := config.LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	if pc := c.pg[i]; pc != nil {
		st, err = postgres.OpenConfig(context.Background(), pc.Copy())
	} else {
		st, err = sqlite.Open(cfg.DataDir + "/test.db")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := transport.New(transport.Options{Self: cfg, Identity: ident, Logger: logger,
		PingInterval: 100 * time.Millisecond, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Transport: tr, Store: st, Config: cfg, Applier: a, Logger: logger,
		PushTimeout: 5 * time.Second, CatchUpInterval: cmp.Or(c.catchUpEvery, time.Second), LinkPoll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { tr.Serve(ctx, ln) })
		if run {
			wg.Go(func() { r.Run(ctx) })
		}
		wg.Wait()
	}()
	c.nodes[i] = &tnode{cfg: cfg, ident: ident, st: st, tr: tr, r: r, cancel: cancel, done: done}
}

func (c *cluster) stop(i int) {
	n := c.nodes[i]
	if n == nil {
		return
	}
	c.nodes[i] = nil
	n.cancel()
	n.r.Close()
	n.tr.Close()
	<-n.done
	n.st.Close()
	n.ident.Destroy()
}

func (c *cluster) restart(i int, run bool) {
	c.stop(i)
	c.start(i, nil, c.app, run)
	c.waitLinks()
}

// waitLinks waits until every running node reaches every other running node.
func (c *cluster) waitLinks() {
	c.t.Helper()
	eventually(c.t, "links between running nodes up", func() error {
		for i, n := range c.nodes {
			if n == nil {
				continue
			}
			for _, ps := range n.tr.Peers() {
				if c.nodes[ps.ID-1] != nil && !ps.Reachable {
					return fmt.Errorf("node %d does not reach node %d", i+1, ps.ID)
				}
			}
		}
		return nil
	})
}

func (c *cluster) rec(payload string) []byte {
	return append(ed25519.Sign(c.priv, []byte(payload)), payload...)
}

// ids returns the IDs in node i's log, in log order, failing on duplicates.
func (c *cluster) ids(i int) []string {
	c.t.Helper()
	var out []string
	seen := map[string]bool{}
	var after int64
	for {
		es, err := c.nodes[i].r.Log(context.Background(), after, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			id := RecordID(e.Data).String()
			if seen[id] {
				c.t.Fatalf("node %d: record %s twice in the log", i+1, id[:16])
			}
			seen[id] = true
			out = append(out, id)
			after = e.Pos
		}
	}
}

func (c *cluster) has(i int, rec []byte) bool {
	c.t.Helper()
	ok, err := c.nodes[i].r.Has(context.Background(), RecordID(rec))
	if err != nil {
		c.t.Fatal(err)
	}
	return ok
}

func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestSubmitAllUp(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	rec := c.rec("a=1")
	if err := c.nodes[0].r.Submit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// Quorum is 2: at least one peer has it now, the other very soon.
	eventually(t, "every node stores the record", func() error {
		for i := range c.nodes {
			if !c.has(i, rec) {
				return fmt.Errorf("node %d lacks it", i+1)
			}
		}
		return nil
	})
	for i := range c.nodes {
		v, err := c.nodes[i].st.Get(ctx, nsState, "a")
		if err != nil || string(v) != "1" {
			t.Fatalf("node %d: state a = %q, %v", i+1, v, err)
		}
	}
	// Submitting again is a no-op everywhere.
	if err := c.nodes[1].r.Submit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		if got := c.ids(i); len(got) != 1 {
			t.Fatalf("node %d: %d records after a resubmit", i+1, len(got))
		}
	}
	// A record the submitting node itself finds invalid goes nowhere.
	bad := c.rec("a=2")
	if err := c.nodes[0].r.Submit(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Submit of a conflicting record: %v", err)
	}
	for i := range c.nodes {
		if c.has(i, bad) {
			t.Fatalf("node %d stored the invalid record", i+1)
		}
	}
	if err := c.nodes[0].r.Submit(ctx, nil); err == nil {
		t.Fatal("empty record accepted")
	}
	if err := c.nodes[0].r.Submit(ctx, make([]byte, MaxRecord+1)); err == nil {
		t.Fatal("oversized record accepted")
	}
}

func TestQuorumWithOneNodeDown(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.stop(2)
	rec := c.rec("k=v")
	if err := c.nodes[0].r.Submit(ctx, rec); err != nil {
		t.Fatalf("Submit with node 3 down: %v", err)
	}
	if !c.has(1, rec) {
		t.Fatal("node 2 did not store the record before Submit returned")
	}
	// Node 3 catches up when it comes back.
	c.restart(2, true)
	eventually(t, "node 3 catches up", func() error {
		if !c.has(2, rec) {
			return errors.New("record missing")
		}
		return nil
	})
}

func TestQuorumFailsFastWithTwoDown(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.stop(1)
	c.stop(2)
	rec := c.rec("k=v")
	start := time.Now()
	err := c.nodes[0].r.Submit(ctx, rec)
	var qe *QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("Submit with two nodes down: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Submit took %v to fail", took)
	}
	if !slices.Equal(qe.Down(), []uint16{2, 3}) || len(qe.Refused()) != 0 || qe.Stored != 1 || qe.Need != 2 {
		t.Fatalf("QuorumError %+v", qe)
	}
	for _, want := range []string{"peer 2 is down", "peer 3 is down", "stored on 1 of 3 nodes, 2 needed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestForgedRecordRefused(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	// Node 1 turns malicious: it stores anything and pushes it.
	c.stop(0)
	c.start(0, nil, acceptAll{}, true)
	c.waitLinks()
	forged := append(make([]byte, ed25519.SignatureSize), "admin=mallory"...)
	err := c.nodes[0].r.Submit(ctx, forged)
	var qe *QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("forged Submit: %v", err)
	}
	if !slices.Equal(qe.Refused(), []uint16{2, 3}) || len(qe.Down()) != 0 {
		t.Fatalf("QuorumError %+v", qe)
	}
	if !strings.Contains(err.Error(), "peer 2 refused") || !strings.Contains(err.Error(), "bad signature") {
		t.Errorf("error does not give the reason: %v", err)
	}
	// Signed by the right key but breaking the chain (unknown parent).
	orphan := c.rec("x=1^nothing")
	if err := c.nodes[0].r.Submit(ctx, orphan); !errors.As(err, &qe) {
		t.Fatalf("orphan Submit: %v", err)
	}
	// A later valid record from the same node still replicates.
	good := c.rec("ok=1")
	if err := c.nodes[0].r.Submit(ctx, good); err != nil {
		t.Fatal(err)
	}
	// Catch-up from the malicious node skips what it forged, never stops.
	for i := 1; i < 3; i++ {
		if err := c.nodes[i].r.CatchUp(ctx); err != nil {
			t.Fatalf("node %d CatchUp: %v", i+1, err)
		}
		if got, want := c.ids(i), []string{RecordID(good).String()}; !slices.Equal(got, want) {
			t.Fatalf("node %d log %v, want only the good record", i+1, got)
		}
		if _, err := c.nodes[i].st.Get(ctx, nsState, "admin"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("node %d state has the forged key: %v", i+1, err)
		}
	}
	if len(c.ids(0)) != 3 {
		t.Fatalf("the malicious node's own log has %d records", len(c.ids(0)))
	}
}

// TestCatchUpWhenLinkComesBack: a running node that could reach no peer
// catches up from one as soon as its link comes back, without waiting for
// the periodic catch-up.
func TestCatchUpWhenLinkComesBack(t *testing.T) {
	c := newCluster(t)
	c.catchUpEvery = time.Hour
	ctx := context.Background()
	c.stop(2)
	rec := c.rec("late=1")
	if err := c.nodes[0].r.Submit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c.stop(0)
	c.stop(1)
	c.start(2, nil, c.app, true) // its start-up catch-up finds nobody
	time.Sleep(300 * time.Millisecond)
	if c.has(2, rec) {
		t.Fatal("node 3 has the record with both peers down")
	}
	c.start(0, nil, c.app, false) // node 1 comes back, pushing nothing
	eventually(t, "node 3 catches up from node 1 when the link is up", func() error {
		if !c.has(2, rec) {
			return errors.New("record missing")
		}
		return nil
	})
}

func TestPushCatchesUpMissingParent(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.stop(2)
	parent := c.rec("p=1")
	if err := c.nodes[0].r.Submit(ctx, parent); err != nil {
		t.Fatal(err)
	}
	// Node 3 comes back without periodic catch-up, and node 2 goes down:
	// the child needs node 3, which lacks its parent until it catches up
	// from the sender while handling the push.
	c.restart(2, false)
	c.stop(1)
	child := c.rec("c=1^p")
	if err := c.nodes[0].r.Submit(ctx, child); err != nil {
		t.Fatalf("Submit of a child: %v", err)
	}
	if got, want := c.ids(2), []string{RecordID(parent).String(), RecordID(child).String()}; !slices.Equal(got, want) {
		t.Fatalf("node 3 log %v, want parent then child", got)
	}
}

func TestRestartDuringWritesCatchesUp(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const writers, each = 4, 15
	var wg sync.WaitGroup
	errc := make(chan error, writers*each)
	stopAt := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i == each/3 {
					close(stopAt)
				}
				// Nodes 1 and 2 take the writes; node 3 goes down meanwhile.
				if err := c.nodes[w%2].r.Submit(ctx, c.rec(fmt.Sprintf("w%d-%d=x", w, i))); err != nil {
					errc <- err
				}
			}
		})
	}
	<-stopAt
	c.stop(2)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	c.restart(2, true)
	want := sorted(c.ids(0))
	if len(want) != writers*each {
		t.Fatalf("node 1 has %d records, want %d", len(want), writers*each)
	}
	eventually(t, "every node holds exactly the same records", func() error {
		for i := range c.nodes {
			if got := sorted(c.ids(i)); !slices.Equal(got, want) {
				return fmt.Errorf("node %d has %d records, want %d", i+1, len(got), len(want))
			}
		}
		return nil
	})
}

func TestConcurrentSubmits(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const workers, each = 6, 10
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	var recs [][]byte
	for w := range workers {
		for i := range each {
			recs = append(recs, c.rec(fmt.Sprintf("c%d-%d=v", w, i)))
		}
	}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Every record is submitted by two nodes at once.
				rec := recs[w*each+i]
				var in sync.WaitGroup
				for _, n := range []int{w % 3, (w + 1) % 3} {
					in.Go(func() {
						if err := c.nodes[n].r.Submit(ctx, rec); err != nil {
							errc <- err
						}
					})
				}
				in.Wait()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	var want []string
	for _, r := range recs {
		want = append(want, RecordID(r).String())
	}
	want = sorted(want)
	eventually(t, "every node holds every record once", func() error {
		for i := range c.nodes {
			if got := sorted(c.ids(i)); !slices.Equal(got, want) {
				return fmt.Errorf("node %d has %d records, want %d", i+1, len(got), len(want))
			}
		}
		return nil
	})
}

func TestMalformedPeerMessagesRefused(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	tr := c.nodes[0].tr
	for _, body := range [][]byte{nil, {0}, {2, 'x'}, {wireVersion}} {
		if _, err := tr.Call(ctx, 2, kindPush, body); err == nil {
			t.Errorf("push %x accepted", body)
		}
	}
	for _, body := range [][]byte{nil, {wireVersion}, encodePull(0, 0), encodePull(-1, 1), append(encodePull(0, 1), 0)} {
		var re *transport.RemoteError
		if _, err := tr.Call(ctx, 2, kindPull, body); !errors.As(err, &re) {
			t.Errorf("pull %x: %v", body, err)
		}
	}
	if got := c.ids(1); len(got) != 0 {
		t.Fatalf("node 2 stored %d records from malformed pushes", len(got))
	}
	// A well-formed pull of an empty log answers an empty batch.
	resp, err := tr.Call(ctx, 2, kindPull, encodePull(0, 5))
	if err != nil || !bytes.Equal(resp, []byte{wireVersion, 0, 0}) {
		t.Fatalf("pull: %x %v", resp, err)
	}
}

// TestPostgresNodes: a cluster where two nodes keep their state in
// PostgreSQL and one in SQLite replicates the same way; the PostgreSQL
// node stopped during concurrent writes catches up with exactly the same
// set of records.
func TestPostgresNodes(t *testing.T) {
	c := newClusterPG(t, 1, 2)
	ctx := context.Background()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errc := make(chan error, writers*each)
	stopAt := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i == each/3 {
					close(stopAt)
				}
				if err := c.nodes[w%2].r.Submit(ctx, c.rec(fmt.Sprintf("pg%d-%d=x", w, i))); err != nil {
					errc <- err
				}
			}
		})
	}
	<-stopAt
	c.stop(2)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	c.restart(2, true)
	want := sorted(c.ids(0))
	if len(want) != writers*each {
		t.Fatalf("node 1 has %d records, want %d", len(want), writers*each)
	}
	eventually(t, "every node holds exactly the same records", func() error {
		for i := range c.nodes {
			if got := sorted(c.ids(i)); !slices.Equal(got, want) {
				return fmt.Errorf("node %d has %d records, want %d", i+1, len(got), len(want))
			}
		}
		return nil
	})
	// A forged record pushed to the PostgreSQL nodes is refused there too.
	forged := append(make([]byte, ed25519.SignatureSize), "evil=1"...)
	if _, err := c.nodes[0].tr.Call(ctx, 2, kindPush, encodePush(forged)); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("forged push to a PostgreSQL node: %v", err)
	}
	if c.has(1, forged) {
		t.Fatal("node 2 stored a forged record")
	}
}
