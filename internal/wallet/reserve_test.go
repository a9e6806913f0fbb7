package wallet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/transport"
)

// TestReservePlan: for every shape 2 ≤ t ≤ n ≤ 16 and every window of t
// consecutive signers, the gateway asks exactly max(0, n−2t+1) other
// holders (none when n ≤ 2t−1: the signers are the quorum), chosen among
// the n−t non-signers, and signers plus reserved holders then meet every
// other signer set; holders already reserved for the request count.
func TestReservePlan(t *testing.T) {
	for n := 2; n <= 16; n++ {
		parties := make([]uint16, n)
		for i := range parties {
			parties[i] = uint16(i + 1)
		}
		for th := 2; th <= n; th++ {
			for start := range n {
				var signers []round.PartyID
				for k := range th {
					signers = append(signers, round.PartyID(parties[(start+k)%n]))
				}
				need, cands := reservePlan(parties, th, signers, nil)
				if need != max(0, n-2*th+1) || len(cands) != n-th {
					t.Fatalf("n=%d t=%d signers %v: need %d of %d candidates", n, th, signers, need, len(cands))
				}
				for _, c := range cands {
					if slices.Contains(signers, round.PartyID(c)) {
						t.Fatalf("n=%d t=%d: signer %d is a candidate", n, th, c)
					}
				}
				// Signers plus the first need candidates: every t-set meets them.
				if len(signers)+need+th <= n {
					t.Fatalf("n=%d t=%d: quorum of %d can be avoided by %d signers", n, th, len(signers)+need, th)
				}
				done := map[uint16]bool{}
				for _, c := range cands[:need] {
					done[c] = true
				}
				if again, _ := reservePlan(parties, th, signers, done); again != 0 {
					t.Fatalf("n=%d t=%d: %d more needed after the reservations", n, th, again)
				}
			}
		}
	}
}

// fakeTransport answers auth.KindReserve with answer(peer), and counts.
type fakeTransport struct {
	mu     sync.Mutex
	calls  []uint16
	down   []uint16
	answer func(peer uint16) error
}

func (f *fakeTransport) Call(_ context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	if kind != auth.KindReserve {
		return nil, fmt.Errorf("unexpected call %q", kind)
	}
	if _, _, err := auth.DecodeReservation(body); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, to)
	f.mu.Unlock()
	return nil, f.answer(to)
}

func (f *fakeTransport) Handle(string, transport.Handler) {}

func (f *fakeTransport) Peers() []transport.PeerStatus {
	var ps []transport.PeerStatus
	for id := uint16(2); id <= 5; id++ {
		ps = append(ps, transport.PeerStatus{ID: id, Reachable: !slices.Contains(f.down, id)})
	}
	return ps
}

func (f *fakeTransport) called() []uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := slices.Clone(f.calls)
	slices.Sort(c)
	return c
}

// TestReservationCover plays the gateway's reservations on 5 holders with
// t = 2 (two extra nodes for each signer set) against peers that answer,
// are down or refuse.
func TestReservationCover(t *testing.T) {
	ctx := context.Background()
	newRes := func(f *fakeTransport, parties ...uint16) *reservation {
		s := &Service{tr: f, log: slog.New(slog.DiscardHandler), signTimeout: time.Second}
		op := auth.Operation{Scope: "app", Account: "alice", Method: api.MethodPersonalSign}
		return &reservation{s: s, op: op, proofs: "proofs", parties: parties, t: 2, done: map[uint16]bool{}}
	}
	refuse := func(code int, msg string) func(uint16) error {
		return func(peer uint16) error {
			return fmt.Errorf("transport: %w", &transport.RemoteError{Peer: peer, Kind: auth.KindReserve, Message: fmt.Sprintf("[%d] %s", code, msg)})
		}
	}
	ok := func(uint16) error { return nil }

	t.Run("3 of 3 holders: nothing sent", func(t *testing.T) {
		f := &fakeTransport{answer: ok}
		if err := newRes(f, 1, 2, 3).cover(ctx, []round.PartyID{1, 2}); err != nil || len(f.called()) != 0 {
			t.Fatalf("%v, calls %v", err, f.called())
		}
	})
	t.Run("a candidate down is replaced; a retry reuses what was reserved", func(t *testing.T) {
		f := &fakeTransport{answer: func(p uint16) error {
			if p == 3 {
				return &transport.PeerDownError{Peer: 3, Err: errors.New("refused")}
			}
			return nil
		}}
		r := newRes(f, 1, 2, 3, 4, 5)
		if err := r.cover(ctx, []round.PartyID{1, 2}); err != nil {
			t.Fatal(err)
		}
		if !r.done[4] || !r.done[5] || r.done[3] || len(f.called()) != 3 {
			t.Fatalf("done %v, calls %v", r.done, f.called())
		}
		// The second attempt with signers {1, 4}: 1, 4, 5 recorded, one more.
		if err := r.cover(ctx, []round.PartyID{1, 4}); err != nil {
			t.Fatal(err)
		}
		if got := f.called(); !slices.Equal(got, []uint16{2, 3, 4, 5}) && !slices.Equal(got, []uint16{2, 3, 3, 4, 5}) {
			t.Fatalf("calls %v", got)
		}
	})
	t.Run("a replay refusal ends it with CodeAuthReplay", func(t *testing.T) {
		f := &fakeTransport{answer: refuse(api.CodeAuthReplay, "approval nonce already used by another request")}
		err := newRes(f, 1, 2, 3, 4, 5).cover(ctx, []round.PartyID{1, 2})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeAuthReplay || !strings.Contains(ae.Message, "already used") {
			t.Fatalf("%v", err)
		}
		if len(f.called()) != 2 {
			t.Fatalf("calls %v: want the first two candidates only", f.called())
		}
	})
	t.Run("refusals on every candidate: the peer's code", func(t *testing.T) {
		f := &fakeTransport{answer: refuse(api.CodeAuthRevoked, "session key was revoked")}
		err := newRes(f, 1, 2, 3, 4, 5).cover(ctx, []round.PartyID{1, 2})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeAuthRevoked {
			t.Fatalf("%v", err)
		}
	})
	t.Run("too few holders reachable: unavailable", func(t *testing.T) {
		f := &fakeTransport{down: []uint16{3, 4}, answer: func(p uint16) error {
			return &transport.PeerDownError{Peer: p, Err: errors.New("refused")}
		}}
		err := newRes(f, 1, 2, 3, 4, 5).cover(ctx, []round.PartyID{1, 2})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a peer's text never passes an internal code", func(t *testing.T) {
		f := &fakeTransport{answer: refuse(-32603, "internal")}
		err := newRes(f, 1, 2, 3, 4, 5).cover(ctx, []round.PartyID{1, 2})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeRejected {
			t.Fatalf("%v", err)
		}
	})
}

// BenchmarkCoverNoExtra is what the reservation adds to a signing on 3
// nodes with t = 2, where the signers are the quorum: planning only, no
// message.
//
//	go test -run '^$' -bench BenchmarkCoverNoExtra ./internal/wallet
func BenchmarkCoverNoExtra(b *testing.B) {
	f := &fakeTransport{answer: func(uint16) error { return errors.New("no reservation expected") }}
	s := &Service{tr: f, log: slog.New(slog.DiscardHandler), signTimeout: time.Second}
	w := &wallet{}
	w.rec.Parties, w.rec.Threshold = []uint16{1, 2, 3}, 2
	p := &Prepared{Method: api.MethodPersonalSign}
	signers := []round.PartyID{1, 3}
	ctx := context.Background()
	for b.Loop() {
		if err := s.newReservation(w, p, [requestLen]byte{}, "proofs").cover(ctx, signers); err != nil {
			b.Fatal(err)
		}
	}
}
