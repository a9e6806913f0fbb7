package sign

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// opening is a peer's round-2 broadcast: R_j and pk_j.
type opening struct {
	bigR, pk *secp256k1.JacobianPoint
}

// adjust is a peer's round-2 direct message, after the multiplication.
type adjust struct {
	gu, gv *secp256k1.JacobianPoint
	psi    *secp256k1.ModNScalar
	du, dv secp256k1.ModNScalar
}

// round3 checks the openings and the multiplications, and computes the
// shares (u_i, w_i) of the signature (steps 8–9).
type round3 struct {
	*round2

	sk secp256k1.ModNScalar // sk_i
	pk []byte               // pk_i, encoded

	cu, cv  map[round.PartyID]*secp256k1.ModNScalar
	opening map[round.PartyID]*opening
	adjust  map[round.PartyID]*adjust
}

var _ round.Round = (*round3)(nil)

func (r *round3) Number() uint16           { return 3 }
func (r *round3) Receives() round.Receives { return round.Receives{Broadcast: true, Direct: true} }

// VerifyMessage checks the structure of a message (field count and
// lengths). Decoding the points (a square root each) and the commitment
// check happen once, in StoreMessage, whose errors blame the sender too.
func (r *round3) VerifyMessage(m *round.Message) error {
	if m.IsBroadcast() {
		f, err := dkls23.SplitFields(m.Payload, 3)
		if err != nil {
			return fmt.Errorf("sign: opening: %w", err)
		}
		if len(f[0]) != curve.PointLen || len(f[1]) != 32 || len(f[2]) != curve.PointLen {
			return errors.New("sign: opening fields of the wrong length")
		}
		return nil
	}
	f, err := dkls23.SplitFields(m.Payload, 4)
	if err != nil {
		return fmt.Errorf("sign: round 3 direct message: %w", err)
	}
	if len(f[0]) != curve.PointLen || len(f[1]) != curve.PointLen || len(f[2]) != curve.ScalarLen {
		return errors.New("sign: round 3 direct message fields of the wrong length")
	}
	return nil
}

func (r *round3) parseOpening(m *round.Message) (*opening, error) {
	f, err := dkls23.SplitFields(m.Payload, 3)
	if err != nil {
		return nil, fmt.Errorf("sign: opening: %w", err)
	}
	if len(f[1]) != 32 {
		return nil, errors.New("sign: opening salt of the wrong length")
	}
	if subtle.ConstantTimeCompare(r.commitment(m.From, f[0], f[1]), r.commits[m.From]) != 1 {
		return nil, errors.New("sign: R_j does not open the commitment")
	}
	bigR, err := curve.DecodePoint(f[0])
	if err != nil {
		return nil, fmt.Errorf("sign: R_j: %w", err)
	}
	pk, err := curve.DecodePoint(f[2])
	if err != nil {
		return nil, fmt.Errorf("sign: pk_j: %w", err)
	}
	return &opening{bigR: bigR, pk: pk}, nil
}

func parseAdjust(payload []byte) (*adjust, []byte, error) {
	f, err := dkls23.SplitFields(payload, 4)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: round 3 direct message: %w", err)
	}
	gu, err := curve.DecodePoint(f[0])
	if err != nil {
		return nil, nil, fmt.Errorf("sign: Γ_u: %w", err)
	}
	gv, err := curve.DecodePoint(f[1])
	if err != nil {
		return nil, nil, fmt.Errorf("sign: Γ_v: %w", err)
	}
	psi, err := curve.DecodeScalar(f[2])
	if err != nil {
		return nil, nil, fmt.Errorf("sign: ψ: %w", err)
	}
	return &adjust{gu: gu, gv: gv, psi: psi}, f[3], nil
}

func (r *round3) StoreMessage(m *round.Message) error {
	if m.IsBroadcast() {
		o, err := r.parseOpening(m)
		if err != nil {
			return err
		}
		r.opening[m.From] = o
		if r.adv != nil && r.adv.victim == m.From {
			r.adv.victimPK = curve.EncodePoint(o.pk)
		}
		return nil
	}
	a, m2, err := parseAdjust(m.Payload)
	if err != nil {
		return err
	}
	if err := r.refused(m.From); err != nil {
		return err
	}
	if r.adv != nil && r.adv.victim == m.From {
		r.adv.reply = slices.Clone(m2)
	}
	// Step 8: finish the multiplication as Bob: d_u, d_v.
	d, err := r.bobMul[m.From].Finish(m2)
	if err != nil {
		r.caught(m.From, err)
		return fmt.Errorf("sign: multiplication: %w", err)
	}
	if len(d) != 2 {
		clear(d)
		return fmt.Errorf("sign: multiplication returned %d values", len(d))
	}
	a.du, a.dv = d[0], d[1]
	clear(d)
	r.adjust[m.From] = a
	return nil
}

// Finalize implements steps 8–9 of Protocol 3.6.
func (r *round3) Finalize() (msgs []*round.Message, nr round.Round, err error) {
	defer func() {
		if err != nil {
			r.Wipe()
		}
	}()
	// Step 8, consistency checks, per peer j:
	//   χ_{i,j}·R_j = Γ_u + d_u·G and χ_{i,j}·pk_j = Γ_v + d_v·G.
	// The multiplications by the secrets χ and d are constant time and
	// batched: χ·R_j and χ·pk_j share χ (one inversion per peer), and every
	// d·G is one batch.
	ds := make([]secp256k1.ModNScalar, 0, 2*len(r.peers))
	for _, j := range r.peers {
		ds = append(ds, r.adjust[j].du, r.adjust[j].dv)
	}
	dG := make([]secp256k1.JacobianPoint, len(ds))
	curve.ScalarBaseMultAll(ds, dG)
	clear(ds)
	var bad []round.PartyID
	for k, j := range r.peers {
		o, a := r.opening[j], r.adjust[j]
		lhs := make([]secp256k1.JacobianPoint, 2)
		curve.ScalarMultAll(r.chi[j], []secp256k1.JacobianPoint{*o.bigR, *o.pk}, lhs)
		var ru, rv secp256k1.JacobianPoint
		curve.Add(a.gu, &dG[2*k], &ru) // complete formulas: d·G is secret
		curve.Add(a.gv, &dG[2*k+1], &rv)
		if !dkls23.EqualPoints(&lhs[0], &ru) || !dkls23.EqualPoints(&lhs[1], &rv) {
			bad = append(bad, j)
		}
	}
	clear(dG)
	if len(bad) > 0 {
		for _, j := range bad {
			r.caught(j, errGammaCheck)
		}
		return nil, nil, round.Abort(errGammaCheck, bad...)
	}
	// Σ pk_j = pk, and R = Σ R_j.
	var sumPK, R secp256k1.JacobianPoint
	own, err := curve.DecodePoint(r.pk)
	if err != nil {
		return nil, nil, err
	}
	ownR, err := curve.DecodePoint(r.bigR)
	if err != nil {
		return nil, nil, err
	}
	sumPK.Set(own)
	R.Set(ownR)
	for _, j := range r.peers {
		secp256k1.AddNonConst(&sumPK, r.opening[j].pk, &sumPK)
		secp256k1.AddNonConst(&R, r.opening[j].bigR, &R)
	}
	if !dkls23.EqualPoints(&sumPK, r.share.PublicKey()) {
		return nil, nil, round.Abort(ErrKeyMismatch, r.unattributable()...)
	}
	R.ToAffine()
	if curve.IsIdentity(&R) {
		return nil, nil, errors.New("sign: the instance point is the identity")
	}
	var rx secp256k1.ModNScalar
	rx.SetByteSlice(R.X.Bytes()[:])

	// Step 9: u_i, v_i, w_i.
	var sumPsi, su, sv secp256k1.ModNScalar
	sumPsi.Set(r.phi)
	for _, j := range r.peers {
		a := r.adjust[j]
		sumPsi.Add(a.psi)
		su.Add(r.cu[j]).Add(&a.du)
		sv.Add(r.cv[j]).Add(&a.dv)
	}
	var u, v, w, t secp256k1.ModNScalar
	u.Mul2(r.r, &sumPsi).Add(&su)
	v.Mul2(&r.sk, &sumPsi).Add(&sv)
	w.Mul2(&r.m, r.phi)
	t.Mul2(&rx, &v)
	w.Add(&t)
	payload := dkls23.AppendField(dkls23.AppendField(nil, curve.EncodeScalar(&u)), curve.EncodeScalar(&w))

	next := &round4{config: r.config, bigR: R, u: u, w: w}
	r.Wipe()
	u.Zero()
	w.Zero()
	v.Zero()
	t.Zero()
	su.Zero()
	sv.Zero()
	sumPsi.Zero()
	return []*round.Message{{To: round.Broadcast, Payload: payload}}, next, nil
}

var errGammaCheck = errors.New("sign: multiplication consistency check (Γ) failed")

// Wipe zeroes the session's secrets: r_i, φ_i, sk_i, every χ_{i,j}, c_u,
// c_v, d_u, d_v and the unfinished multiplications (round.Wiper). Finalize
// calls it once they are no longer needed (each is used once), and the
// Session on every other exit.
func (r *round3) Wipe() {
	r.round2.Wipe()
	r.sk.Zero()
	for j := range r.cu {
		r.cu[j].Zero()
	}
	for j := range r.cv {
		r.cv[j].Zero()
	}
	for _, a := range r.adjust {
		a.du.Zero()
		a.dv.Zero()
	}
}
