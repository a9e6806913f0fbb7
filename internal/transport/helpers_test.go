package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// testNode is one in-process node: its config, identity, transport and
// peer listener.
type testNode struct {
	cfg   *config.Node
	ident *config.Identity
	tr    *Transport
	ln    net.Listener
	stop  context.CancelFunc
	done  chan error
}

// makeConfigs returns node configs for ids 1..len(idents), node i reached
// at addrs[i].
func makeConfigs(idents []*config.Identity, addrs []string) []*config.Node {
	n := len(idents)
	cfgs := make([]*config.Node, n)
	for i := range n {
		c := &config.Node{
			ID: uint16(i + 1), ClusterID: "km-test", Threshold: 2,
			APIListen: "127.0.0.1:9", PeerListen: addrs[i], DataDir: "unused",
		}
		for j := range n {
			if j == i {
				continue
			}
			c.Peers = append(c.Peers, config.Peer{
				ID: uint16(j + 1), PeerAddr: addrs[j], APIURL: "http://127.0.0.1:9",
				IdentityKey: idents[j].PublicKeyString(),
			})
		}
		cfgs[i] = c
	}
	return cfgs
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testOptions are short timings so that failures show quickly.
func testOptions(o *Options) {
	o.DialTimeout = 2 * time.Second
	o.SessionTimeout = 30 * time.Second
	o.PingInterval = 200 * time.Millisecond
	// Generous: under -race on a loaded machine a goroutine can stall for
	// most of a second, and a lost link fails sessions.
	o.PingTimeout = 3 * time.Second
}

// newCluster starts n transports over real TCP + mTLS on 127.0.0.1.
func newCluster(t *testing.T, n int, tweak func(o *Options)) []*testNode {
	return newClusterTB(t, n, tweak)
}

func newClusterB(b *testing.B, n int) []*testNode { return newClusterTB(b, n, nil) }

func newClusterTB(t testing.TB, n int, tweak func(o *Options)) []*testNode {
	t.Helper()
	idents := make([]*config.Identity, n)
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range n {
		var err error
		if idents[i], err = config.GenerateIdentity(); err != nil {
			t.Fatal(err)
		}
		lns[i] = listen(t)
		addrs[i] = lns[i].Addr().String()
	}
	cfgs := makeConfigs(idents, addrs)
	nodes := make([]*testNode, n)
	for i := range n {
		nodes[i] = startNode(t, cfgs[i], idents[i], lns[i], tweak)
	}
	return nodes
}

func startNode(t testing.TB, cfg *config.Node, ident *config.Identity, ln net.Listener, tweak func(o *Options)) *testNode {
	t.Helper()
	o := Options{Self: cfg, Identity: ident}
	testOptions(&o)
	if tweak != nil {
		tweak(&o)
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &testNode{cfg: cfg, ident: ident, tr: tr, ln: ln, stop: cancel, done: make(chan error, 1)}
	go func() { nd.done <- tr.Serve(ctx, ln) }()
	t.Cleanup(nd.close)
	return nd
}

func (nd *testNode) close() {
	nd.stop()
	nd.tr.Close()
}

// waitReachable waits until every node reports every listed peer reachable.
func waitReachable(t *testing.T, nodes []*testNode, ids ...uint16) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, nd := range nodes {
		for {
			ok := true
			for _, st := range nd.tr.Peers() {
				for _, id := range ids {
					if st.ID == id && !st.Reachable {
						ok = false
					}
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: peers %v not reachable: %+v", nd.cfg.ID, ids, nd.tr.Peers())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

type crResult struct {
	out map[round.PartyID][32]byte
	err map[round.PartyID]error
}

// runCommitReveal runs one commit-reveal session among parties, each on
// its node (party p on nodes[p-1]), concurrently; delay[p] postpones p's
// start.
func runCommitReveal(ctx context.Context, nodes []*testNode, parties []round.PartyID, delay map[round.PartyID]time.Duration) crResult {
	gate := map[round.PartyID]func(){}
	for p, d := range delay {
		gate[p] = func() { time.Sleep(d) }
	}
	return runCommitRevealGated(ctx, nodes, parties, gate)
}

// runCommitRevealGated is runCommitReveal where each party in gate starts
// only after its gate function returns.
func runCommitRevealGated(ctx context.Context, nodes []*testNode, parties []round.PartyID, gate map[round.PartyID]func()) crResult {
	res := crResult{out: map[round.PartyID][32]byte{}, err: map[round.PartyID]error{}}
	ss, err := mpctest.NewCommitRevealSessions(parties)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() {
			if g := gate[s.Self()]; g != nil {
				g()
			}
			out, err := nodes[s.Self()-1].tr.RunSession(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.err[s.Self()] = err
				return
			}
			res.out[s.Self()] = out.([32]byte)
		})
	}
	wg.Wait()
	return res
}

// agree checks that every party finished with the same non-zero output.
func (r crResult) agree(parties []round.PartyID) error {
	for p, err := range r.err {
		return fmt.Errorf("%v: %w", p, err)
	}
	if len(r.out) != len(parties) {
		return fmt.Errorf("%d outputs for %d parties", len(r.out), len(parties))
	}
	first := r.out[parties[0]]
	if first == ([32]byte{}) {
		return errors.New("zero output")
	}
	for p, o := range r.out {
		if o != first {
			return fmt.Errorf("%v output %x, %v output %x", p, o, parties[0], first)
		}
	}
	return nil
}

// runCommitRevealFiltered is runCommitReveal with only the parties in run
// started; the others never run the session.
func runCommitRevealFiltered(ctx context.Context, nodes []*testNode, parties, run []round.PartyID) crResult {
	res := crResult{out: map[round.PartyID][32]byte{}, err: map[round.PartyID]error{}}
	ss, err := mpctest.NewCommitRevealSessions(parties)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range ss {
		if !slices.Contains(run, s.Self()) {
			continue
		}
		wg.Go(func() {
			out, err := nodes[s.Self()-1].tr.RunSession(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.err[s.Self()] = err
				return
			}
			res.out[s.Self()] = out.([32]byte)
		})
	}
	wg.Wait()
	return res
}

func mpctestSessions(parties []round.PartyID) ([]*round.Session, error) {
	return mpctest.NewCommitRevealSessions(parties)
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// rawLink opens a TLS connection to node to, authenticated with as's key,
// without the transport's link machinery, for sending hand-made frames.
func rawLink(t *testing.T, as, to *testNode) *peerConn {
	t.Helper()
	cert, err := selfSignedCert(as.ident, &as.tr.policy)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", to.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, clientConfig(cert, to.cfg.ID, to.ident.PublicKey()))
	// Held until the test ends: a connection the test no longer refers to
	// is closed by the garbage collector (the socket's finalizer), which
	// cancels the handlers it started on the other side (that made
	// TestHandlersCappedPerPeer fail when it ran first in its process).
	t.Cleanup(func() { tc.Close() })
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	// As link.dial does: a pong shows the server accepted our certificate.
	b, _ := appendFrame(nil, &frame{typ: framePing, id: 1})
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	if f, _, err := readFrame(tc); err != nil || f.typ != framePong {
		t.Fatalf("no pong: %v", err)
	}
	return newPeerConn(as.tr, to.cfg.ID, tc, nil)
}
