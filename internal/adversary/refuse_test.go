//go:build keymesh_adversary

package adversary

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
	"github.com/keymesh/keymesh/internal/wallet"
)

// signRun prepares one signing run of attacker ev with the victim: a fresh
// approval by u of a new message, an invitation with a fresh nonce, and
// the attacker's own honest session for it (with its own live share).
func signRun(t *testing.T, ev *Evil, u *User, addr common.Address, victim uint16, label string) (*round.Session, []byte) {
	t.Helper()
	own, err := ev.Share(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("message " + label)
	req := u.ApproveSign(api.MethodPersonalSign, []any{hexutil.Encode(msg), addr.Hex()})
	nonce, request := random32(), random16()
	s, err := sign.NewSession(own, []round.PartyID{round.PartyID(ev.ID()), round.PartyID(victim)}, req.Digest[:], nonce[:], rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s, ev.SignInvitation(req, request, nonce, ev.ID(), victim)
}

// tamperOT flips one bit in the middle of the OT-extension columns u of
// the multiplication's first message (rvole: version ‖ δ ‖ KOS message,
// whose first and largest part is u) that the attacker sends to victim in
// session sid: the victim's consistency check as OT-extension sender fails.
func tamperOT(sid round.SessionID, victim uint16) Rule {
	return FlipBit(All(InSession(sid), To(victim), Direct(rvole.Msg1Len())), rvole.Msg1Len()/2, 3)
}

// TestTamperedOTColumnsRefuseOpenSessions is findings 2 and 3 of issue 12
// on a real 3-node cluster. Node 1 opens k signing sessions with the
// honest node 2 and holds them open (node 2 has started each, sent its
// first protocol messages and waits for node 1's), then tampers the OT
// columns in one more session. Node 3 does the same at the same time. Once
// node 2's check fails:
//
//   - none of the k open sessions completes on node 2 (each fails with
//     sign.ErrRefused when node 1's messages arrive) and node 1 gets no
//     signature;
//   - a new invitation from node 1 or node 3 is refused;
//   - both refusals (made concurrently, on one wallet) are in node 2's
//     share record and survive its restart.
func TestTamperedOTColumnsRefuseOpenSessions(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	u := c.NewUser("carol")
	addr := c.CreateWallet(2, u)
	const victim, k = 2, 4
	ev1, ev3 := c.Evil(1), c.Evil(3)

	// k sessions held open on node 1's side from its first protocol
	// message (engine round 3: round 1 is the contribution exchange).
	release := make(chan struct{})
	held := make(chan round.SessionID, k)
	open := ev1.OpenSessions(ctx, k, func(i int) (*round.Session, string, []byte, []uint16) {
		s, body := signRun(t, ev1, u, addr, victim, fmt.Sprintf("held %d", i))
		ev1.Alter(Hold(All(InSession(s.ID()), FromRound(3)), release, func(sid round.SessionID) { held <- sid }))
		return s, wallet.KindSign, body, []uint16{victim}
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	for range k {
		select {
		case <-held:
		case <-time.After(30 * time.Second):
			t.Fatal("the sessions did not open within 30 s")
		}
	}
	for i, r := range open {
		select {
		case <-r.Done():
			t.Fatalf("open session %d ended before the tamper: %v / %v", i, r.Err, r.Errs)
		default:
		}
	}

	// Node 1 and node 3 each tamper one session, at the same time.
	s1, body1 := signRun(t, ev1, u, addr, victim, "tampered by node 1")
	ev1.Alter(tamperOT(s1.ID(), victim))
	s3, body3 := signRun(t, ev3, u, addr, victim, "tampered by node 3")
	ev3.Alter(tamperOT(s3.ID(), victim))
	t1 := ev1.Start(ctx, s1, wallet.KindSign, body1, victim)
	t3 := ev3.Start(ctx, s3, wallet.KindSign, body3, victim)
	for _, r := range []*Run{t1.Wait(), t3.Wait()} {
		if err := r.PeerErr(victim); err == nil || !strings.Contains(err.Error(), "blaming") {
			t.Fatalf("tampered session: node %d answered %v, want an abort blaming the tamperer", victim, err)
		}
	}
	share2 := func() interface{ Refused(round.PartyID) bool } {
		t.Helper()
		sh, err := c.Node(victim).TestingOnlyWallet().TestingOnlyShare(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}
	if sh := share2(); !sh.Refused(1) || !sh.Refused(3) {
		t.Fatalf("after the tampers node %d refuses node 1: %v, node 3: %v", victim, sh.Refused(1), sh.Refused(3))
	}
	if !strings.Contains(c.Log(victim), `"event":"peer_refused"`) {
		t.Fatalf("node %d logged no security event for the refusal", victim)
	}

	// The held sessions go on: none completes.
	close(release)
	for i, r := range open {
		r.Wait()
		err := r.PeerErr(victim)
		if err == nil || !strings.Contains(err.Error(), sign.ErrRefused.Error()) {
			t.Fatalf("open session %d: node %d answered %v, want a failure wrapping sign.ErrRefused", i, victim, err)
		}
		if r.Err == nil {
			t.Fatalf("open session %d: node 1 got a signature", i)
		}
	}

	// New invitations are refused, before and after node 2 restarts.
	wantRefused := func(when string) {
		t.Helper()
		for _, ev := range []*Evil{ev1, ev3} {
			s, body := signRun(t, ev, u, addr, victim, "new "+when)
			r := ev.RunSession(ctx, s, wallet.KindSign, body, victim)
			if err := r.PeerErr(victim); err == nil || !strings.Contains(err.Error(), sign.ErrRefused.Error()) {
				t.Fatalf("%s: node %d answered node %d's new invitation with %v, want sign.ErrRefused", when, victim, ev.ID(), err)
			}
		}
	}
	wantRefused("before the restart")
	c.Restart(victim)
	if sh := share2(); !sh.Refused(1) || !sh.Refused(3) {
		t.Fatalf("after a restart node %d refuses node 1: %v, node 3: %v", victim, sh.Refused(1), sh.Refused(3))
	}
	wantRefused("after the restart")
}
