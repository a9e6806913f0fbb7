package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// lockedBuf is a log sink safe for the transport and the test.
type lockedBuf struct {
	mu  chan struct{}
	buf strings.Builder
}

func newLockedBuf() *lockedBuf { return &lockedBuf{mu: make(chan struct{}, 1)} }

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *lockedBuf) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// waitPeer polls nd's view of peer until ok accepts it.
func waitPeer(t *testing.T, nd *testNode, peer uint16, what string, ok func(PeerStatus) bool) PeerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, st := range nd.tr.Peers() {
			if st.ID == peer && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: peer %d not %s: %+v", nd.cfg.ID, peer, what, nd.tr.Peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mismatched(st PeerStatus) bool { return st.PolicyMismatch && !st.Reachable }

// TestPolicyMismatchRefused: node 3's config differs from nodes 1 and 2's
// in cluster policy (production, with node_hosts). Its links are refused
// both ways: no call and no session message passes between it and the
// others, each side reports the peer as a policy mismatch naming both
// digests, node 1 logs it once however often node 3 redials, and nodes 1
// and 2 keep working together. Restarted with the cluster's policy, node 3
// is taken back.
func TestPolicyMismatchRefused(t *testing.T) {
	idents := make([]*config.Identity, 3)
	lns := make([]net.Listener, 3)
	addrs := make([]string, 3)
	for i := range idents {
		var err error
		if idents[i], err = config.GenerateIdentity(); err != nil {
			t.Fatal(err)
		}
		lns[i] = listen(t)
		addrs[i] = lns[i].Addr().String()
	}
	cfgs := makeConfigs(idents, addrs)
	good := cfgs[2].PolicyDigest()
	flipped := *cfgs[2]
	flipped.Production, flipped.NodeHosts = true, []string{"127.0.0.1"}
	if err := flipped.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := flipped.PolicyDigest()
	if bad == good {
		t.Fatal("flipping production did not change the digest")
	}

	log1 := newLockedBuf()
	var served [4]atomic.Int64
	nodes := make([]*testNode, 3)
	for i := range nodes {
		cfg := cfgs[i]
		if i == 2 {
			cfg = &flipped
		}
		nodes[i] = startNode(t, cfg, idents[i], lns[i], func(o *Options) {
			if i == 0 {
				o.Logger = slog.New(slog.NewJSONHandler(log1, nil))
			}
		})
		nodes[i].tr.Handle("echo", func(_ context.Context, from uint16, body []byte) ([]byte, error) {
			served[from].Add(1)
			return body, nil
		})
	}
	if nodes[0].tr.PolicyDigest() != good || nodes[2].tr.PolicyDigest() != bad {
		t.Fatal("PolicyDigest is not the config's")
	}

	waitReachable(t, nodes[:2], 1, 2)
	for _, v := range []struct {
		nd           *testNode
		peer         uint16
		ours, theirs config.PolicyDigest
	}{{nodes[0], 3, good, bad}, {nodes[1], 3, good, bad}, {nodes[2], 1, bad, good}, {nodes[2], 2, bad, good}} {
		st := waitPeer(t, v.nd, v.peer, "a policy mismatch", mismatched)
		if !strings.Contains(st.LastError, "cluster policy mismatch") || !strings.Contains(st.LastError, v.ours.String()) || !strings.Contains(st.LastError, v.theirs.String()) {
			t.Errorf("node %d reports peer %d as %q: want the mismatch and both digests", v.nd.cfg.ID, v.peer, st.LastError)
		}
	}

	// The nodes keep redialling each other with backoff; node 1 logs the
	// refusal once, naming both digests and the fields to compare.
	time.Sleep(time.Second)
	logged := strings.Count(log1.String(), "peer refused: its cluster policy differs")
	if logged != 1 || !strings.Contains(log1.String(), `"peer_policy_digest":"`+bad.String()+`"`) ||
		!strings.Contains(log1.String(), `"policy_digest":"`+good.String()+`"`) || !strings.Contains(log1.String(), "node_hosts and admission") {
		t.Errorf("node 1 logged the mismatch %d times, want once with both digests:\n%s", logged, log1.String())
	}

	// Calls fail with the mismatch both ways; none reaches a handler.
	ctx := context.Background()
	for _, c := range [][2]int{{0, 3}, {1, 3}, {2, 1}, {2, 2}} {
		_, err := nodes[c[0]].tr.Call(ctx, uint16(c[1]), "echo", []byte("x"))
		var pm *PolicyMismatchError
		var pd *PeerDownError
		if !errors.As(err, &pm) || !errors.As(err, &pd) || pd.Peer != uint16(c[1]) {
			t.Errorf("call from node %d to %d: %v, want a PeerDownError for the policy mismatch", c[0]+1, c[1], err)
		}
	}
	if _, err := nodes[0].tr.Call(ctx, 2, "echo", []byte("x")); err != nil {
		t.Fatalf("call 1 → 2: %v", err)
	}
	if served[3].Load() != 0 || served[1].Load() != 1 {
		t.Fatalf("handlers served node 3 %d times, node 1 %d times; want 0 and 1", served[3].Load(), served[1].Load())
	}
	if served[2].Load() != 0 {
		t.Fatalf("node 2's calls were served %d times", served[2].Load())
	}

	// Sessions: 1 and 2 agree; 1 with 3 fails naming the mismatch.
	if err := runCommitReveal(ctx, nodes, []round.PartyID{1, 2}, nil).agree([]round.PartyID{1, 2}); err != nil {
		t.Fatalf("session of nodes 1 and 2: %v", err)
	}
	res := runCommitReveal(ctx, nodes, []round.PartyID{1, 3}, nil)
	var pm *PolicyMismatchError
	if err := res.err[1]; !errors.As(err, &pm) || pm.Peer != 3 {
		t.Fatalf("node 1's session with node 3: %v, want the policy mismatch", err)
	}

	// A connection without a digest (a build from before it) is refused
	// too, though its key is node 3's.
	cert, err := selfSignedCert(idents[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", addrs[0], clientConfig(cert, 1, idents[0].PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := appendFrame(nil, &frame{typ: framePing, id: 7})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	tc.Write(b)
	if f, _, err := readFrame(tc); err == nil {
		t.Fatalf("a peer without a policy digest got frame type %d", f.typ)
	}
	tc.Close()
	// Logged (Peers says so too until node 1 next dials node 3 and sees
	// the flipped digest again).
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log1.String(), `"peer":3,"peer_policy_digest":"none"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node 1 did not log the connection without a digest:\n%s", log1.String())
		}
	}

	// Node 3 restarted with the cluster's policy: taken back.
	nodes[2].close()
	<-nodes[2].done
	ln, err := netListen(addrs[2])
	if err != nil {
		t.Skipf("node 3's port was taken meanwhile: %v", err)
	}
	nodes[2] = startNode(t, cfgs[2], idents[2], ln, nil)
	nodes[2].tr.Handle("echo", func(_ context.Context, from uint16, body []byte) ([]byte, error) { return body, nil })
	waitReachable(t, nodes, 1, 2, 3)
	for _, nd := range nodes {
		for _, st := range nd.tr.Peers() {
			if st.PolicyMismatch {
				t.Errorf("node %d still reports peer %d as a mismatch: %+v", nd.cfg.ID, st.ID, st)
			}
		}
	}
	if _, err := nodes[0].tr.Call(ctx, 3, "echo", []byte("x")); err != nil {
		t.Fatalf("call 1 → 3 after the fix: %v", err)
	}
	if !strings.Contains(log1.String(), "now matches") {
		t.Error("node 1 did not log that peer 3's policy matches again")
	}
}

// TestPolicyDigestOverride: Options.PolicyDigest replaces the config's
// digest; a node presenting the others' digest is taken whatever its
// config says (the digest shows configuration, it proves nothing about
// the code a node runs: that is what every node's own record checks are
// for).
func TestPolicyDigestOverride(t *testing.T) {
	nodes := newCluster(t, 2, func(o *Options) {
		if o.Self.ID == 2 {
			honest := o.Self.PolicyDigest()
			o.Self.Production, o.Self.NodeHosts = true, []string{"127.0.0.1"}
			o.PolicyDigest = &honest
		}
	})
	waitReachable(t, nodes, 1, 2)
	if nodes[1].tr.PolicyDigest() != nodes[0].tr.PolicyDigest() || nodes[1].cfg.PolicyDigest() == nodes[0].tr.PolicyDigest() {
		t.Fatal("the override did not replace the config's digest")
	}
}
