package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

var (
	all3 = []round.PartyID{1, 2, 3}
	subs = [][]round.PartyID{{1, 2}, {2, 3}, {1, 3}}
)

func TestSessionsOverMutualTLS(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	ctx := context.Background()
	for _, ps := range append([][]round.PartyID{all3}, subs...) {
		if err := runCommitReveal(ctx, nodes, ps, nil).agree(ps); err != nil {
			t.Fatalf("parties %v: %v", ps, err)
		}
	}
	for _, nd := range nodes {
		st := nd.tr.Stats()
		if st.SessionsSucceeded != 3 || st.SessionsFailed != 0 || st.MessagesDropped != 0 {
			t.Fatalf("node %d stats %+v", nd.cfg.ID, st)
		}
		for _, p := range nd.tr.Peers() {
			if !p.Reachable || p.LastSeen.IsZero() || p.LastError != "" {
				t.Fatalf("node %d: peer status %+v", nd.cfg.ID, p)
			}
		}
	}
}

func TestConcurrentSessions(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		ps := all3
		if i%2 == 1 {
			ps = subs[i%3]
		}
		// Stagger starts so that some messages arrive before their
		// session runs and must be buffered.
		delay := map[round.PartyID]time.Duration{ps[i%len(ps)]: time.Duration(i%4) * 30 * time.Millisecond}
		wg.Go(func() {
			if err := runCommitReveal(ctx, nodes, ps, delay).agree(ps); err != nil {
				errs <- fmt.Errorf("session %d, parties %v: %w", i, ps, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLateStarterGetsBufferedMessages(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	res := runCommitReveal(context.Background(), nodes, all3, map[round.PartyID]time.Duration{1: 500 * time.Millisecond})
	if err := res.agree(all3); err != nil {
		t.Fatal(err)
	}
}

func TestPendingBufferExpires(t *testing.T) {
	nodes := newCluster(t, 3, func(o *Options) {
		o.PendingTTL = 100 * time.Millisecond
		o.SessionTimeout = time.Second
	})
	// Party 1 starts long after the others' first messages expired: they
	// are dropped, so the session cannot finish anywhere. It waits for the
	// others' sessions to have started (and so sent round 1) rather than
	// for a fixed time, so a loaded machine does not make it start early.
	started := func() bool {
		return nodes[1].tr.Stats().SessionsStarted > 0 && nodes[2].tr.Stats().SessionsStarted > 0
	}
	res := runCommitRevealGated(context.Background(), nodes, all3, map[round.PartyID]func(){1: func() {
		for deadline := time.Now().Add(10 * time.Second); !started() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
	}})
	var te *TimeoutError
	if !errors.As(res.err[1], &te) || te.Round != 2 || len(te.Waiting) != 2 {
		t.Fatalf("party 1: %v, want a timeout in round 2 waiting for 2 and 3", res.err[1])
	}
	if nodes[0].tr.Stats().MessagesDropped < 2 {
		t.Fatalf("expired messages not counted as dropped: %+v", nodes[0].tr.Stats())
	}
}

func TestTimeoutNamesWaitingParties(t *testing.T) {
	nodes := newCluster(t, 3, func(o *Options) { o.SessionTimeout = 500 * time.Millisecond })
	// Party 3 never starts.
	ss := runPartial(t, nodes, all3, 1, 2)
	for p, err := range ss {
		var te *TimeoutError
		if !errors.As(err, &te) || len(te.Waiting) != 1 || te.Waiting[0] != 3 {
			t.Fatalf("party %d: %v, want timeout waiting for peer 3", p, err)
		}
		if !strings.Contains(err.Error(), "waiting for peers 3") {
			t.Fatalf("error text %q does not name peer 3", err)
		}
	}
}

// runPartial runs a session among parties on only the nodes in run, and
// returns each runner's error; none may succeed.
func runPartial(t *testing.T, nodes []*testNode, parties []round.PartyID, run ...round.PartyID) map[round.PartyID]error {
	t.Helper()
	res := runCommitRevealFiltered(context.Background(), nodes, parties, run)
	for _, p := range run {
		if res.err[p] == nil {
			t.Fatalf("party %d finished a session with a missing party", p)
		}
	}
	return res.err
}

func TestPeerDownFailsFast(t *testing.T) {
	nodes := newCluster(t, 3, nil) // SessionTimeout 30s
	waitReachable(t, nodes, 1, 2, 3)
	nodes[2].close()

	// A session between the two live nodes completes.
	if err := runCommitReveal(context.Background(), nodes, []round.PartyID{1, 2}, nil).agree([]round.PartyID{1, 2}); err != nil {
		t.Fatal(err)
	}
	// A session that needs node 3 fails fast, naming it.
	start := time.Now()
	errs := runCommitRevealFiltered(context.Background(), nodes, all3, []round.PartyID{1, 2}).err
	elapsed := time.Since(start)
	for _, p := range []round.PartyID{1, 2} {
		var pd *PeerDownError
		if !errors.As(errs[p], &pd) || pd.Peer != 3 {
			t.Fatalf("party %d: %v, want *PeerDownError for peer 3", p, errs[p])
		}
	}
	if elapsed > 2*time.Second {
		t.Fatalf("failing took %v with a 30s session timeout", elapsed)
	}
	// The session may have failed on a write to node 3's closed socket
	// before node 1's read loop saw the close and marked the link down
	// (under load that takes a moment): the status follows within 2 s.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var bad string
		for _, st := range nodes[0].tr.Peers() {
			if st.ID == 3 && (st.Reachable || st.LastError == "") || st.ID == 2 && !st.Reachable {
				bad = fmt.Sprintf("peer %d status %+v", st.ID, st)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
	}
	// So does a call.
	_, err := nodes[0].tr.Call(context.Background(), 3, "echo", nil)
	var pd *PeerDownError
	if !errors.As(err, &pd) || pd.Peer != 3 {
		t.Fatalf("call to dead peer: %v", err)
	}
}

func TestPeerDiesMidSession(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	waitReachable(t, nodes, 1, 2, 3)
	// Node 3 sends its round-2 commitment and dies as it is about to send
	// round 3, after nodes 1 and 2 have sent it theirs: they learn it is
	// gone only from the broken link, not from a failed send.
	var once sync.Once
	nodes[2].tr.testingOnlyAlterOutgoing = func(to uint16, m *round.Message) {
		if m.Round == 3 {
			once.Do(func() {
				time.Sleep(300 * time.Millisecond)
				nodes[2].close()
			})
		}
	}
	start := time.Now()
	errs := runCommitRevealFiltered(context.Background(), nodes, all3, all3).err
	for _, p := range []round.PartyID{1, 2} {
		var pd *PeerDownError
		if !errors.As(errs[p], &pd) || pd.Peer != 3 {
			t.Fatalf("party %d: %v, want *PeerDownError for peer 3", p, errs[p])
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v with a 30s session timeout", d)
	}
}

func TestReconnect(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	waitReachable(t, nodes, 1, 2, 3)
	addr := nodes[2].ln.Addr().String()
	nodes[2].close()
	time.Sleep(300 * time.Millisecond)
	ln, err := netListen(addr)
	if err != nil {
		t.Fatal(err)
	}
	nodes[2] = startNode(t, nodes[2].cfg, nodes[2].ident, ln, nil)
	waitReachable(t, nodes, 1, 2, 3)
	if err := runCommitReveal(context.Background(), nodes, all3, nil).agree(all3); err != nil {
		t.Fatal(err)
	}
}

func TestInconsistentBroadcastOverSockets(t *testing.T) {
	nodes := newCluster(t, 3, func(o *Options) { o.SessionTimeout = 2 * time.Second })
	// Node 1 sends node 3 a different round-2 commitment than node 2 gets.
	nodes[0].tr.testingOnlyAlterOutgoing = func(to uint16, m *round.Message) {
		if to == 3 && m.Round == 2 && m.IsBroadcast() {
			m.Payload[0] ^= 1
		}
	}
	res := runCommitReveal(context.Background(), nodes, all3, nil)
	// No one may finish. Whoever of 2 and 3 compares echoes first aborts
	// and sends nothing more, so the other either does the same or times
	// out waiting for it. The round engine names no one for a third
	// party's broadcast that two peers saw differently (either of them may
	// be lying about it, round.Session.checkEcho), and it never blames an
	// honest party.
	if len(res.out) != 0 {
		t.Fatalf("outputs despite an inconsistent broadcast: %v", res.out)
	}
	aborted := 0
	for _, p := range []round.PartyID{2, 3} {
		var ae *round.AbortError
		var te *TimeoutError
		switch {
		case errors.As(res.err[p], &ae) && errors.Is(res.err[p], round.ErrInconsistentBroadcast) && !ae.Blames(2) && !ae.Blames(3):
			aborted++
		case errors.As(res.err[p], &te):
		default:
			t.Fatalf("party %d: %v, want an inconsistent-broadcast abort blaming no honest party, or a timeout", p, res.err[p])
		}
	}
	if aborted == 0 {
		t.Fatal("no honest party detected the inconsistent broadcast")
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	var served atomic.Int32
	nodes[0].tr.Handle("echo", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		served.Add(1)
		return body, nil
	})
	// A fourth key, not in node 1's config, configured to reach node 1.
	rogueID, _ := config.GenerateIdentity()
	cfgs := makeConfigs([]*config.Identity{nodes[0].ident, rogueID}, []string{nodes[0].ln.Addr().String(), "127.0.0.1:9"})
	// It presents node 1's policy digest, so that only its key is wrong.
	policy := nodes[0].tr.PolicyDigest()
	rogue := startNode(t, cfgs[1], rogueID, listen(t), func(o *Options) { o.PolicyDigest = &policy })
	_, err := rogue.tr.Call(context.Background(), 1, "echo", []byte("hi"))
	var pd *PeerDownError
	if !errors.As(err, &pd) || pd.Peer != 1 || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("rogue call: %v, want PeerDownError with bad certificate", err)
	}
	if served.Load() != 0 {
		t.Fatal("handler ran for an unknown key")
	}
	if nodes[0].tr.Stats().ConnsRejected == 0 {
		t.Fatal("rejection not counted")
	}
	// Control: a configured peer is served.
	if got, err := nodes[1].tr.Call(context.Background(), 1, "echo", []byte("hi")); err != nil || string(got) != "hi" || served.Load() != 1 {
		t.Fatalf("configured peer: %q %v", got, err)
	}
}

func TestImpostorServerRefused(t *testing.T) {
	// Node 1 is configured to reach node 2 at an address where a node with
	// another key listens (it has node 1's key configured, so it would
	// accept node 1 as a client).
	id1, _ := config.GenerateIdentity()
	id2, _ := config.GenerateIdentity()
	idX, _ := config.GenerateIdentity()
	ln1, lnX := listen(t), listen(t)
	cfg1 := makeConfigs([]*config.Identity{id1, id2}, []string{ln1.Addr().String(), lnX.Addr().String()})[0]
	cfgX := makeConfigs([]*config.Identity{id1, idX}, []string{ln1.Addr().String(), lnX.Addr().String()})[1]
	n1 := startNode(t, cfg1, id1, ln1, nil)
	nX := startNode(t, cfgX, idX, lnX, nil)
	var served atomic.Int32
	nX.tr.Handle("echo", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		served.Add(1)
		return body, nil
	})
	_, err := n1.tr.Call(context.Background(), 2, "echo", []byte("hi"))
	var pd *PeerDownError
	if !errors.As(err, &pd) || pd.Peer != 2 || !strings.Contains(err.Error(), "not its configured key") {
		t.Fatalf("call to impostor: %v", err)
	}
	if served.Load() != 0 {
		t.Fatal("request reached the impostor")
	}
}

func TestMessageFromOtherSenderDropped(t *testing.T) {
	nodes := newCluster(t, 3, func(o *Options) { o.SessionTimeout = 700 * time.Millisecond })
	for _, tc := range []struct {
		linkAs    int // node whose key the raw connection uses
		wantRound uint16
	}{
		{linkAs: 3, wantRound: 2}, // says From=2 over node 3's link: dropped
		{linkAs: 2, wantRound: 3}, // control: over node 2's own link it counts
	} {
		ss, _ := mpctestSessions([]round.PartyID{1, 2})
		errc := make(chan error, 1)
		go func() {
			_, err := nodes[0].tr.RunSession(context.Background(), ss[0])
			errc <- err
		}()
		// A valid round-2 commitment of party 2 for this session, sent by
		// hand over a link authenticated as node linkAs.
		m := &round.Message{SessionID: ss[0].ID(), Round: 2, From: 2, To: round.Broadcast, Payload: bytes.Repeat([]byte{7}, 32)}
		pc := rawLink(t, nodes[tc.linkAs-1], nodes[0])
		if err := pc.send(&frame{typ: frameMsg, msg: m}); err != nil {
			t.Fatal(err)
		}
		err := <-errc
		var te *TimeoutError
		if !errors.As(err, &te) || te.Round != tc.wantRound {
			t.Fatalf("link as node %d: %v, want timeout in round %d", tc.linkAs, err, tc.wantRound)
		}
		pc.close(nil)
	}
}

func TestCall(t *testing.T) {
	nodes := newCluster(t, 2, nil)
	nodes[1].tr.Handle("whoami", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		return []byte(fmt.Sprintf("%d:%s", from, body)), nil
	})
	nodes[1].tr.Handle("fail", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		return nil, errors.New("nope")
	})
	ctx := context.Background()
	got, err := nodes[0].tr.Call(ctx, 2, "whoami", []byte("x"))
	if err != nil || string(got) != "1:x" {
		t.Fatalf("whoami: %q %v", got, err)
	}
	_, err = nodes[0].tr.Call(ctx, 2, "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "nope" || re.Peer != 2 {
		t.Fatalf("fail: %v", err)
	}
	_, err = nodes[0].tr.Call(ctx, 2, "missing", nil)
	if !errors.As(err, &re) || !strings.Contains(re.Message, "no handler") {
		t.Fatalf("missing: %v", err)
	}
	if _, err := nodes[0].tr.Call(ctx, 9, "whoami", nil); err == nil {
		t.Fatal("call to unknown peer")
	}
	if _, err := nodes[0].tr.Call(ctx, 2, "bad kind", nil); err == nil {
		t.Fatal("call with a bad kind")
	}
	// Many concurrent calls over one link.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			body := []byte(fmt.Sprint(i))
			got, err := nodes[0].tr.Call(ctx, 2, "whoami", body)
			if err != nil || string(got) != "1:"+string(body) {
				t.Errorf("call %d: %q %v", i, got, err)
			}
		})
	}
	wg.Wait()
	// A call whose handler outlives ctx returns ctx's error.
	nodes[1].tr.Handle("slow", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := nodes[0].tr.Call(cctx, 2, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	id, _ := config.GenerateIdentity()
	other, _ := config.GenerateIdentity()
	cfg := makeConfigs([]*config.Identity{other, id}, []string{"127.0.0.1:1", "127.0.0.1:2"})[0]
	// Node 1 configured with its own key for peer 2.
	if _, err := New(Options{Self: cfg, Identity: id}); err == nil || !strings.Contains(err.Error(), "own identity key") {
		t.Fatalf("own key as a peer: %v", err)
	}
	if _, err := New(Options{Self: cfg}); err == nil {
		t.Fatal("no identity accepted")
	}
	bad := *cfg
	bad.Threshold = 5
	if _, err := New(Options{Self: &bad, Identity: other}); err == nil {
		t.Fatal("invalid config accepted")
	}
}

// TestPeerBackIsNotFailedFast: after a dial to a peer failed, a frame from
// that peer (back up: restarted, it calls this node) shows it is up, so a
// call or session to it within the fast-fail window dials instead of
// failing. Before, a co-signer refused the session its restarted gateway
// had just invited it to ("peer 1 is down": node TestAuditLog without
// -race).
func TestPeerBackIsNotFailedFast(t *testing.T) {
	echo := func(_ context.Context, _ uint16, body []byte) ([]byte, error) { return body, nil }
	nodes := newCluster(t, 2, nil)
	for _, nd := range nodes {
		nd.tr.Handle("echo", echo)
	}
	waitReachable(t, nodes, 1, 2)
	ctx := context.Background()
	addr := nodes[1].ln.Addr().String()
	for try := 0; ; try++ {
		nodes[1].close()
		<-nodes[1].done
		// Node 1 finds node 2 down.
		var pd *PeerDownError
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := nodes[0].tr.Call(ctx, 2, "echo", nil); errors.As(err, &pd) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node 1 never saw node 2 down")
			}
		}
		failed := time.Now()
		// Node 2 comes back at its address and calls node 1.
		ln, err := netListen(addr)
		if err != nil {
			t.Fatalf("node 2's port was taken meanwhile: %v", err)
		}
		nodes[1] = startNode(t, nodes[1].cfg, nodes[1].ident, ln, nil)
		nodes[1].tr.Handle("echo", echo)
		if _, err := nodes[1].tr.Call(ctx, 1, "echo", []byte("back")); err != nil {
			t.Fatal(err)
		}
		// Node 1 calls node 2 at once, within the window of its failure.
		_, err = nodes[0].tr.Call(ctx, 2, "echo", []byte("hello"))
		within := time.Since(failed) < fastFailWindow
		if err != nil && within {
			t.Fatalf("a call to a peer that just called us failed fast: %v", err)
		}
		if err == nil && within {
			return
		}
		if try == 4 {
			t.Fatalf("5 tries never stayed within the %v window (machine too slow?): %v", fastFailWindow, err)
		}
	}
}
