package dkg

import (
	"errors"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/oprf"
)

// round3 receives our share of every dealer's polynomial, checks it against
// the dealer's commitments, and computes our key share and the public key.
type round3 struct {
	*round2
	sum group.Scalar // Σ_j f_j(self) so far; wiped in Finalize
	got map[round.PartyID]bool
}

var _ round.Round = (*round3)(nil)

func (r *round3) Number() uint16           { return 3 }
func (r *round3) Receives() round.Receives { return round.Receives{Direct: true} }

// VerifyMessage is FROST KeyGen round 2 step 2: f_j(i)·G ?= Σ_k i^k·C_jk.
func (r *round3) VerifyMessage(msg *round.Message) error {
	if msg.IsBroadcast() {
		return errors.New("dkg: round 3 takes direct messages only")
	}
	s, err := parseShare(msg.Payload)
	if err != nil {
		return fmt.Errorf("dkg: share from %v: %w", msg.From, err)
	}
	defer s.SetUint64(0)
	want := evalCommitments(r.commits[msg.From].c, r.self)
	if r.refresh() {
		// The commitments start at X^1: Σ_{k≥1} x^k·C_k = x·Σ_k x^(k−1)·C_k.
		want.Mul(want, g.NewScalar().SetUint64(uint64(r.self)))
	}
	if !g.NewElement().MulGen(s).IsEqual(want) {
		return fmt.Errorf("dkg: share from %v does not match its commitments", msg.From)
	}
	return nil
}

func (r *round3) StoreMessage(msg *round.Message) error {
	s, err := parseShare(msg.Payload)
	if err != nil {
		return fmt.Errorf("dkg: share from %v: %w", msg.From, err)
	}
	r.sum.Add(r.sum, s)
	s.SetUint64(0)
	r.got[msg.From] = true
	return nil
}

// Wipe zeroes the running sum of our shares, and our polynomial if still
// held (round.Wiper).
func (r *round3) Wipe() {
	r.round2.Wipe()
	r.sum.SetUint64(0)
}

// Finalize is FROST KeyGen round 2 steps 3–4 (refresh: HJKY95 §3.1, adding
// the update to the old share), then broadcasts a digest of the public key.
func (r *round3) Finalize() ([]*round.Message, round.Round, error) {
	defer r.sum.SetUint64(0)
	// A_k = Σ_j C_jk, the commitments to the summed polynomial.
	n := len(r.own.c)
	agg := make([]group.Element, n)
	for k := range agg {
		agg[k] = g.Identity()
		for _, p := range r.parties {
			agg[k].Add(agg[k], r.commits[p].c[k])
		}
	}
	ids := make([]uint16, len(r.parties))
	ys := make([]group.Element, len(r.parties))
	var y group.Element
	if r.refresh() {
		old := r.old.Public()
		y = old.Element()
		for i, p := range r.parties {
			ids[i] = uint16(p)
			ys[i] = evalCommitments(agg, p)
			ys[i].Mul(ys[i], g.NewScalar().SetUint64(uint64(p)))
			prev, _ := old.Share(uint16(p))
			ys[i].Add(ys[i], prev)
		}
	} else {
		y = agg[0]
		for i, p := range r.parties {
			ids[i] = uint16(p)
			ys[i] = evalCommitments(agg, p)
		}
	}
	pub, err := oprf.NewPublicKey(r.t, y, ids, ys)
	if err != nil {
		return nil, nil, fmt.Errorf("dkg: %w", err)
	}
	var share *oprf.KeyShare
	if r.refresh() {
		share, err = r.old.Refreshed(r.sum, pub)
	} else {
		share, err = oprf.NewKeyShare(uint16(r.self), r.sum, pub)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dkg: %w", err)
	}
	pb, err := pub.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("dkg: %w", err)
	}
	conf := confirmation(r.sid, pb)
	next := &round4{cfg: r.config, share: share, conf: conf}
	return []*round.Message{{To: round.Broadcast, Payload: conf}}, next, nil
}
