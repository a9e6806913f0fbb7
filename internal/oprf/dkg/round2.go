package dkg

import (
	"errors"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// round2 receives every dealer's commitments, checks their proofs of
// knowledge, and sends each party its share of our polynomial.
type round2 struct {
	*round1
	a       []group.Scalar // our polynomial; wiped in Finalize
	own     *commitMsg
	commits map[round.PartyID]*commitMsg
}

var _ round.Round = (*round2)(nil)

func (r *round2) Number() uint16           { return 2 }
func (r *round2) Receives() round.Receives { return round.Receives{Broadcast: true} }

// VerifyMessage decodes the dealer's commitments and, for key generation,
// checks its proof of knowledge (FROST KeyGen round 1 step 5:
// R ?= μ·G − c·C_0).
func (r *round2) VerifyMessage(msg *round.Message) error {
	if !msg.IsBroadcast() {
		return errors.New("dkg: round 2 takes broadcasts only")
	}
	m, err := parseCommitMsg(msg.Payload, r.t, r.refresh())
	if err != nil {
		return fmt.Errorf("dkg: commitments from %v: %w", msg.From, err)
	}
	if r.refresh() {
		return nil
	}
	c := pokChallenge(r.sid, msg.From, m.c, m.r)
	want := g.NewElement().MulGen(m.mu)
	want.Add(want, g.NewElement().Neg(g.NewElement().Mul(m.c[0], c)))
	if !want.IsEqual(m.r) {
		return fmt.Errorf("dkg: proof of knowledge from %v does not verify", msg.From)
	}
	return nil
}

func (r *round2) StoreMessage(msg *round.Message) error {
	m, err := parseCommitMsg(msg.Payload, r.t, r.refresh())
	if err != nil {
		return fmt.Errorf("dkg: commitments from %v: %w", msg.From, err)
	}
	r.commits[msg.From] = m
	return nil
}

// Wipe zeroes our polynomial if the run ends before Finalize wiped it
// (round.Wiper).
func (r *round2) Wipe() {
	for _, ak := range r.a {
		ak.SetUint64(0)
	}
	r.a = nil
}

// Finalize is FROST KeyGen round 2 step 1: send f_i(j) to every party j,
// keep f_i(i), and wipe the polynomial.
func (r *round2) Finalize() ([]*round.Message, round.Round, error) {
	r.commits[r.self] = r.own
	var out []*round.Message
	for _, p := range r.parties {
		if p == r.self {
			continue
		}
		s := evalPoly(r.a, p)
		out = append(out, &round.Message{To: p, Payload: marshalShare(s)})
		s.SetUint64(0)
	}
	next := &round3{round2: r, sum: evalPoly(r.a, r.self), got: map[round.PartyID]bool{}}
	for _, ak := range r.a {
		ak.SetUint64(0)
	}
	r.a = nil
	return out, next, nil
}
