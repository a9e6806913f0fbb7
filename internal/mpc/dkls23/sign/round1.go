package sign

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// round1 samples the instance key and the inversion mask, commits to the
// instance point and starts the multiplications as Bob (steps 4–6).
type round1 struct {
	*config
}

var _ round.Round = (*round1)(nil)

func (r *round1) Number() uint16           { return 1 }
func (r *round1) Receives() round.Receives { return round.Receives{} }
func (r *round1) VerifyMessage(*round.Message) error {
	return errors.New("sign: round 1 takes no messages")
}
func (r *round1) StoreMessage(*round.Message) error {
	return errors.New("sign: round 1 takes no messages")
}

// Finalize implements steps 4–6 of Protocol 3.6.
func (r *round1) Finalize() (msgs []*round.Message, nr round.Round, err error) {
	next := &round2{
		round1:  r,
		chi:     map[round.PartyID]*secp256k1.ModNScalar{},
		bobMul:  map[round.PartyID]*rvole.BobMul{},
		commits: map[round.PartyID][]byte{},
		mul1:    map[round.PartyID][]byte{},
	}
	defer func() {
		if err != nil {
			next.Wipe() // the Session never sees next
		}
	}()
	// Step 5: instance key r_i and inversion mask φ_i.
	ri, err := curve.RandomScalar(r.rand)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	phi, err := curve.RandomScalar(r.rand)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	next.r, next.phi = ri, phi
	var R secp256k1.JacobianPoint
	curve.ScalarBaseMult(ri, &R)
	next.bigR = curve.EncodePoint(&R)
	// Step 6: commit to R_i.
	next.salt = make([]byte, 32)
	if _, err := io.ReadFull(r.rand, next.salt); err != nil {
		return nil, nil, fmt.Errorf("sign: reading randomness: %w", err)
	}
	out := []*round.Message{{To: round.Broadcast, Payload: r.commitment(r.self, next.bigR, next.salt)}}
	// Step 6: with every peer j as Alice, start the multiplication as
	// Bob with a random input χ_{i,j}.
	for _, j := range r.peers {
		if err := r.refused(j); err != nil {
			return nil, nil, err
		}
		chi, err := curve.RandomScalar(r.rand)
		if err != nil {
			return nil, nil, fmt.Errorf("sign: %w", err)
		}
		next.chi[j] = chi
		start := (*rvole.BobSetup).Start
		if r.adv != nil && r.adv.victim == j {
			start = r.adv.startBob
		}
		mul, m1, err := start(r.share.Peer(j).Bob(), r.mulSID(j, r.self), chi, r.rand)
		if err != nil {
			return nil, nil, fmt.Errorf("sign: multiplication with %v: %w", j, err)
		}
		next.bobMul[j] = mul
		out = append(out, &round.Message{To: j, Payload: m1})
	}
	r.trace(next)
	return out, next, nil
}
