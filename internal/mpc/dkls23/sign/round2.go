package sign

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// round2 stores the commitments and the multiplications' first messages,
// then runs the multiplications as Alice and opens R_i (step 7).
type round2 struct {
	*round1

	r, phi *secp256k1.ModNScalar // r_i, φ_i
	bigR   []byte                // R_i, encoded
	salt   []byte

	chi    map[round.PartyID]*secp256k1.ModNScalar // χ_{i,j}: our Bob input with j
	bobMul map[round.PartyID]*rvole.BobMul

	commits map[round.PartyID][]byte
	mul1    map[round.PartyID][]byte
}

var _ round.Round = (*round2)(nil)

func (r *round2) Number() uint16           { return 2 }
func (r *round2) Receives() round.Receives { return round.Receives{Broadcast: true, Direct: true} }

func (r *round2) VerifyMessage(m *round.Message) error {
	if m.IsBroadcast() && len(m.Payload) != 32 {
		return fmt.Errorf("sign: commitment of %d bytes, want 32", len(m.Payload))
	}
	if !m.IsBroadcast() && len(m.Payload) == 0 {
		return errors.New("sign: empty multiplication message")
	}
	return nil
}

func (r *round2) StoreMessage(m *round.Message) error {
	if m.IsBroadcast() {
		r.commits[m.From] = m.Payload
	} else {
		r.mul1[m.From] = m.Payload
	}
	return nil
}

// Wipe zeroes the secrets of the session so far: r_i, φ_i, every χ_{i,j},
// and Bob's state of every multiplication not yet finished (round.Wiper).
func (r *round2) Wipe() {
	if r.r != nil {
		r.r.Zero()
	}
	if r.phi != nil {
		r.phi.Zero()
	}
	for _, c := range r.chi {
		c.Zero()
	}
	for _, m := range r.bobMul {
		m.Wipe()
	}
	clear(r.salt)
}

// Finalize implements step 7 of Protocol 3.6.
func (r *round2) Finalize() (msgs []*round.Message, nr round.Round, err error) {
	next := &round3{
		round2:  r,
		cu:      map[round.PartyID]*secp256k1.ModNScalar{},
		cv:      map[round.PartyID]*secp256k1.ModNScalar{},
		opening: map[round.PartyID]*opening{},
		adjust:  map[round.PartyID]*adjust{},
	}
	defer func() {
		if err != nil {
			next.Wipe() // wipes r too
		}
	}()
	// Step 7: sk_i = λ_i·x_i + ζ_i and pk_i = sk_i·G.
	l, err := dkls23.Lagrange(r.signers, r.self)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	x := r.share.SecretShare()
	zeta := r.zeroShare()
	next.sk.Mul2(l, x).Add(&zeta)
	x.Zero()
	zeta.Zero()
	// Step 7: with every peer j as Bob, multiply (r_i, sk_i) by χ_{j,i}.
	alpha := []secp256k1.ModNScalar{*r.r, next.sk}
	defer func() { alpha[0].Zero(); alpha[1].Zero() }()
	// ks holds sk_i, then c_u, c_v for every peer: their multiples of G
	// are computed as one batch (one field inversion).
	ks := make([]secp256k1.ModNScalar, 1, 1+2*len(r.peers))
	ks[0] = next.sk
	defer clear(ks)
	m2s := make([][]byte, len(r.peers))
	if r.adv != nil {
		r.adv.ownSK.Set(&next.sk)
	}
	for k, j := range r.peers {
		if err := r.refused(j); err != nil {
			return nil, nil, err
		}
		c, m2, err := r.share.Peer(j).Alice().Multiply(r.mulSID(r.self, j), alpha, r.mul1[j], r.rand)
		if err != nil {
			r.caught(j, err)
			return nil, nil, round.Abort(fmt.Errorf("sign: multiplication with %v: %w", j, err), j)
		}
		if len(c) != 2 {
			return nil, nil, fmt.Errorf("sign: multiplication returned %d values", len(c))
		}
		next.cu[j], next.cv[j] = &c[0], &c[1]
		ks = append(ks, c[0], c[1])
		m2s[k] = m2
	}
	// pk_i = sk_i·G, Γ_u = c_u·G, Γ_v = c_v·G.
	pts := make([]secp256k1.JacobianPoint, len(ks))
	curve.ScalarBaseMultAll(ks, pts)
	for i := range pts {
		if curve.IsIdentity(&pts[i]) {
			// A zero scalar happens with probability 2^-256; the
			// identity has no encoding, and strict decoding rejects it.
			return nil, nil, errors.New("sign: degenerate key share or multiplication output")
		}
	}
	next.pk = curve.EncodePoint(&pts[0])
	out := []*round.Message{{
		To:      round.Broadcast,
		Payload: dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(nil, r.bigR), r.salt), next.pk),
	}}
	for k, j := range r.peers {
		// Step 7: ψ_{i,j} = φ_i − χ_{i,j}.
		var psi secp256k1.ModNScalar
		psi.NegateVal(r.chi[j]).Add(r.phi)
		payload := dkls23.AppendField(nil, curve.EncodePoint(&pts[1+2*k]))
		payload = dkls23.AppendField(payload, curve.EncodePoint(&pts[2+2*k]))
		payload = dkls23.AppendField(payload, curve.EncodeScalar(&psi))
		payload = dkls23.AppendField(payload, m2s[k])
		psi.Zero()
		out = append(out, &round.Message{To: j, Payload: payload})
	}
	r.trace(next)
	return out, next, nil
}
