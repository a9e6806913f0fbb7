package sign_test

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// pair drives one signing session between parties 1 and 2 by hand, so that
// a test can hold several open at chosen points.
type pair struct {
	s     map[round.PartyID]*round.Session
	queue []*round.Message // each with its recipient in To (broadcasts expanded)
	to    []round.PartyID
}

func newPair(t *testing.T, shares []*dkls23.Share, digest []byte) *pair {
	t.Helper()
	p := &pair{s: map[round.PartyID]*round.Session{}}
	nonce := dkls23test.Nonce()
	for _, sh := range shares {
		s, err := sign.NewSession(sh, []round.PartyID{1, 2}, digest, nonce, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p.s[sh.Self()] = s
	}
	for _, s := range p.s {
		out, err := s.Start()
		if err != nil {
			t.Fatal(err)
		}
		p.post(s.Self(), out)
	}
	return p
}

func (p *pair) post(from round.PartyID, msgs []*round.Message) {
	for _, m := range msgs {
		p.queue = append(p.queue, m)
		p.to = append(p.to, 3-from)
	}
}

// run delivers queued messages of engine rounds up to maxRound (through
// rule, if not nil) until none is left.
func (p *pair) run(maxRound uint16, rule mpctest.Rule) {
	for {
		i := -1
		for k, m := range p.queue {
			if m.Round <= maxRound {
				i = k
				break
			}
		}
		if i < 0 {
			return
		}
		m, to := p.queue[i], p.to[i]
		p.queue = append(p.queue[:i], p.queue[i+1:]...)
		p.to = append(p.to[:i], p.to[i+1:]...)
		msgs := []*round.Message{m}
		if rule != nil {
			msgs = rule(to, m)
		}
		for _, d := range msgs {
			out, _ := p.s[to].Handle(d)
			p.post(to, out)
		}
	}
}

// Issue 12, finding 2: k = 5 sessions with party 2 are open at party 1,
// some before and some after party 1 has used its OT correlation with 2;
// party 2 tampers an OT-extension column in another session and is caught.
// From then on no open session with party 2 completes at party 1 (each
// aborts with ErrRefused before it uses the correlation again), and no new
// one starts.
func TestRefusalStopsOpenSessions(t *testing.T) {
	shares := shares23(t)[:2]
	const k = 5
	var open []*pair
	for i := range k {
		p := newPair(t, shares, newDigest())
		// Sessions 0–2 stop with the contributions in (engine round 3
		// next: party 1 has not multiplied as Alice yet); 3–4 one round
		// later (party 1 has answered as Alice, its Bob side is pending).
		p.run(2+uint16(i/3), nil)
		open = append(open, p)
	}
	// The probing session: party 2's OT-extension message is tampered.
	probe := newPair(t, shares, newDigest())
	probe.run(10, flip(2, 3, true, 8*100+1))
	if _, err := probe.s[1].Result(); len(sign.Cheaters(err)) != 1 || sign.Cheaters(err)[0] != 2 {
		t.Fatalf("the probe was not caught: %v", err)
	}
	if !shares[0].Refused(2) {
		t.Fatal("party 1 did not refuse party 2 at once")
	}
	for i, p := range open {
		p.run(10, nil)
		out, err := p.s[1].Result()
		if err == nil || out != nil {
			t.Fatalf("open session %d completed after the refusal", i)
		}
		if !errors.Is(err, sign.ErrRefused) {
			t.Fatalf("open session %d: %v, want ErrRefused", i, err)
		}
		if out, _ := p.s[2].Result(); out != nil {
			t.Fatalf("open session %d: party 2 output a signature", i)
		}
	}
	if _, err := sign.NewSession(shares[0], []round.PartyID{1, 2}, newDigest(), dkls23test.Nonce(), rand.Reader); !errors.Is(err, sign.ErrRefused) {
		t.Fatalf("new session with a refused peer: %v", err)
	}
}

// A session with an honest third party is not affected by a refusal of
// another peer.
func TestRefusalIsPerPeer(t *testing.T) {
	shares := shares23(t)
	if err := shares[0].Refuse(2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dkls23test.Sign(shares, []round.PartyID{1, 3}, newDigest(), nil, 1); err != nil {
		t.Fatal(err)
	}
}
