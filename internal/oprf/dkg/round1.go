package dkg

import (
	"crypto/rand"
	"errors"

	"github.com/cloudflare/circl/group"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// round1 picks this party's polynomial and broadcasts its commitments (and,
// for key generation, a proof of knowledge of the constant term).
type round1 struct {
	*config
}

var _ round.Round = (*round1)(nil)

func (r *round1) Number() uint16           { return 1 }
func (r *round1) Receives() round.Receives { return round.Receives{} }
func (r *round1) VerifyMessage(*round.Message) error {
	return errors.New("dkg: round 1 takes no messages")
}
func (r *round1) StoreMessage(*round.Message) error {
	return errors.New("dkg: round 1 takes no messages")
}

// Finalize is FROST KeyGen round 1 steps 1–4 (refresh: steps 1 and 3 with
// a_0 = 0).
func (r *round1) Finalize() ([]*round.Message, round.Round, error) {
	a := make([]group.Scalar, r.t)
	for k := range a {
		a[k] = g.RandomNonZeroScalar(rand.Reader)
	}
	if r.refresh() {
		a[0].SetUint64(0)
	}
	msg := r.commit(a)
	next := &round2{round1: r, a: a, own: msg, commits: map[round.PartyID]*commitMsg{}}
	return []*round.Message{{To: round.Broadcast, Payload: msg.marshal()}}, next, nil
}

// commit returns the commitments to a (from index first) and, for key
// generation, σ = (R, μ) with R = k·G, μ = k + a_0·c.
func (r *round1) commit(a []group.Scalar) *commitMsg {
	m := &commitMsg{}
	for _, ak := range a[r.first():] {
		m.c = append(m.c, g.NewElement().MulGen(ak))
	}
	if r.refresh() {
		return m
	}
	k := g.RandomNonZeroScalar(rand.Reader)
	m.r = g.NewElement().MulGen(k)
	c := pokChallenge(r.sid, r.self, m.c, m.r)
	m.mu = g.NewScalar().Mul(a[0], c)
	m.mu.Add(m.mu, k)
	k.SetUint64(0)
	return m
}
