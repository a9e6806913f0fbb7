package sign

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// round4 combines the shares (u_j, w_j) into the signature and verifies it
// (step 10).
type round4 struct {
	*config
	bigR secp256k1.JacobianPoint
	u, w secp256k1.ModNScalar
}

var _ round.Round = (*round4)(nil)

// Wipe zeroes the sums of the shares of the signature (round.Wiper).
func (r *round4) Wipe() {
	r.u.Zero()
	r.w.Zero()
}

func (r *round4) Number() uint16           { return 4 }
func (r *round4) Receives() round.Receives { return round.Receives{Broadcast: true} }

func (r *round4) VerifyMessage(m *round.Message) error {
	if !m.IsBroadcast() {
		return errors.New("sign: round 4 takes broadcasts only")
	}
	_, _, err := parseUW(m.Payload)
	return err
}

func parseUW(payload []byte) (u, w *secp256k1.ModNScalar, err error) {
	f, err := dkls23.SplitFields(payload, 2)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: round 4 message: %w", err)
	}
	if u, err = curve.DecodeScalar(f[0]); err != nil {
		return nil, nil, fmt.Errorf("sign: u_j: %w", err)
	}
	if w, err = curve.DecodeScalar(f[1]); err != nil {
		return nil, nil, fmt.Errorf("sign: w_j: %w", err)
	}
	return u, w, nil
}

func (r *round4) StoreMessage(m *round.Message) error {
	u, w, err := parseUW(m.Payload)
	if err != nil {
		return err
	}
	r.u.Add(u)
	r.w.Add(w)
	return nil
}

// Finalize implements step 10 of Protocol 3.6: s = Σ w_j / Σ u_j, low-s
// normalisation, the recovery id, and verification before release.
func (r *round4) Finalize() ([]*round.Message, round.Round, error) {
	if r.u.IsZero() {
		return nil, nil, round.Abort(fmt.Errorf("%w: Σ u is zero", dkls23.ErrInvalidSignature), r.unattributable()...)
	}
	var s secp256k1.ModNScalar
	s.InverseValNonConst(&r.u).Mul(&r.w) // u is a public value once combined
	sig, err := dkls23.NewSignature(&r.bigR, &s)
	if err != nil {
		return nil, nil, round.Abort(err, r.unattributable()...)
	}
	if err := sig.Verify(r.share.PublicKey(), r.digest); err != nil {
		return nil, nil, round.Abort(fmt.Errorf("sign: the combined signature does not verify: %w", err), r.unattributable()...)
	}
	return nil, &round.Output{Result: sig}, nil
}
