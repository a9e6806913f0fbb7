package keygen

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dlog"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// round1 samples the dealt polynomial and commits to its coefficient
// commitments, and starts the pairwise rvole setups (this party as Bob).
type round1 struct {
	*config
}

var _ round.Round = (*round1)(nil)

func (r *round1) Number() uint16           { return 1 }
func (r *round1) Receives() round.Receives { return round.Receives{} }
func (r *round1) VerifyMessage(*round.Message) error {
	return errors.New("keygen: round 1 takes no messages")
}
func (r *round1) StoreMessage(*round.Message) error {
	return errors.New("keygen: round 1 takes no messages")
}

// Finalize implements round 1 (see the package doc).
func (r *round1) Finalize() (msgs []*round.Message, nr round.Round, err error) {
	next := &round2{
		round1:   r,
		bobSetup: map[round.PartyID]*rvole.BobSetupState{},
		mySeeds:  map[round.PartyID][]byte{},
		commits:  map[round.PartyID][]byte{},
		setup1:   map[round.PartyID][]byte{},
		seeds:    map[round.PartyID][]byte{},
	}
	defer func() {
		if err != nil {
			next.Wipe() // the Session never sees next
		}
	}()
	if r.isDealer(r.self) {
		if err := next.deal(); err != nil {
			return nil, nil, err
		}
	}
	salt := make([]byte, 32)
	if _, err := io.ReadFull(r.rand, salt); err != nil {
		return nil, nil, fmt.Errorf("keygen: reading randomness: %w", err)
	}
	next.salt = salt
	if o := r.testingOnlyOpening; o != nil {
		next.salt, next.coeffs, next.proof = o[0], o[1:len(o)-1], o[len(o)-1]
	}
	next.myCommit = r.commitment(r.self, next.salt, next.coeffs)
	out := []*round.Message{{To: round.Broadcast, Payload: next.myCommit}}
	for _, p := range r.all {
		if p == r.self {
			continue
		}
		var payload []byte
		if r.isReceiver(r.self) && r.isReceiver(p) {
			st, m1, err := rvole.SetupBob(r.pairSID(p, r.self), r.rand)
			if err != nil {
				return nil, nil, fmt.Errorf("keygen: rvole setup with %v: %w", p, err)
			}
			next.bobSetup[p] = st
			s := make([]byte, dkls23.SeedLen)
			if _, err := io.ReadFull(r.rand, s); err != nil {
				return nil, nil, fmt.Errorf("keygen: reading randomness: %w", err)
			}
			next.mySeeds[p] = s
			payload = dkls23.AppendField(dkls23.AppendField(nil, s), m1)
		}
		out = append(out, &round.Message{To: p, Payload: payload})
	}
	r.trace(next)
	return out, next, nil
}

// deal samples g_i (t' coefficients), its commitments C_i and the proof of
// knowledge of g_i(0).
func (r *round2) deal() error {
	r.poly = make([]secp256k1.ModNScalar, r.threshold)
	if r.isKeygen {
		a0, err := curve.RandomScalar(r.rand)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		r.poly[0] = *a0
		a0.Zero()
	} else {
		l, err := dkls23.Lagrange(r.dealers, r.self)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		x := r.old.SecretShare()
		if r.testingOnlySecret != nil {
			x.Set(r.testingOnlySecret)
		}
		r.poly[0].Mul2(l, x)
		x.Zero()
	}
	for k := 1; k < r.threshold; k++ {
		a, err := curve.RandomScalar(r.rand)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		r.poly[k] = *a
		a.Zero()
	}
	r.coeffs = make([][]byte, r.threshold)
	for k := range r.poly {
		var C secp256k1.JacobianPoint
		curve.ScalarBaseMult(&r.poly[k], &C)
		r.coeffs[k] = curve.EncodePoint(&C)
		if k == 0 {
			proof, err := dlog.Prove(r.proofContext(r.self), &r.poly[0], &C, r.rand)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			r.proof = proof
		}
	}
	return nil
}
