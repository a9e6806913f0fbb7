package keygen

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dlog"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// round3 checks the openings, proofs and dealt shares, finishes the rvole
// setups, computes the new share and broadcasts a digest of the public
// result.
type round3 struct {
	*round2

	alice    map[round.PartyID]*rvole.AliceSetup
	bob      map[round.PartyID]*rvole.BobSetup
	setup2   map[round.PartyID][]byte
	openings map[round.PartyID][]secp256k1.JacobianPoint // C_j
	dealt    map[round.PartyID]*secp256k1.ModNScalar     // g_j(self)
}

var _ round.Round = (*round3)(nil)

func (r *round3) Number() uint16           { return 3 }
func (r *round3) Receives() round.Receives { return round.Receives{Broadcast: true, Direct: true} }

// VerifyMessage checks the direct messages fully and the openings'
// structure; the openings' commitment, points and proof are checked once,
// in StoreMessage, whose errors blame the sender too.
func (r *round3) VerifyMessage(m *round.Message) error {
	if m.IsBroadcast() {
		if !r.isDealer(m.From) {
			if len(m.Payload) != 0 {
				return errors.New("keygen: opening from a party that does not deal")
			}
			return nil
		}
		if _, err := dkls23.SplitFields(m.Payload, r.threshold+2); err != nil {
			return fmt.Errorf("keygen: opening (want %d commitments): %w", r.threshold, err)
		}
		return nil
	}
	_, _, err := r.parseDirect(m.From, m.Payload)
	return err
}

// parseOpening checks dealer j's opening: its length, the commitment V_j,
// the proof of knowledge of g_j(0) and, in a resharing, g_j(0)·G = λ_j·X_j.
func (r *round3) parseOpening(j round.PartyID, payload []byte) ([]secp256k1.JacobianPoint, error) {
	if !r.isDealer(j) {
		if len(payload) != 0 {
			return nil, errors.New("keygen: opening from a party that does not deal")
		}
		return nil, nil
	}
	f, err := dkls23.SplitFields(payload, r.threshold+2)
	if err != nil {
		return nil, fmt.Errorf("keygen: opening (want %d commitments): %w", r.threshold, err)
	}
	salt, coeffs, proof := f[0], f[1:r.threshold+1], f[r.threshold+1]
	if len(salt) != 32 {
		return nil, errors.New("keygen: opening salt of the wrong length")
	}
	if subtle.ConstantTimeCompare(r.commitment(j, salt, coeffs), r.commits[j]) != 1 {
		return nil, errors.New("keygen: opening does not match the commitment")
	}
	C := make([]secp256k1.JacobianPoint, len(coeffs))
	for k, c := range coeffs {
		p, err := curve.DecodePoint(c)
		if err != nil {
			return nil, fmt.Errorf("keygen: commitment %d: %w", k, err)
		}
		C[k] = *p
	}
	if err := dlog.Verify(r.proofContext(j), &C[0], proof); err != nil {
		return nil, fmt.Errorf("keygen: proof of knowledge: %w", err)
	}
	if !r.isKeygen {
		l, err := dkls23.Lagrange(r.dealers, j)
		if err != nil {
			return nil, fmt.Errorf("keygen: %w", err)
		}
		var want secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(l, r.oldShares[j], &want)
		if !dkls23.EqualPoints(&want, &C[0]) {
			return nil, errors.New("keygen: dealt constant is not the Lagrange-weighted old share")
		}
	}
	return C, nil
}

// parseDirect parses j's direct message: the share g_j(self) if j deals to
// us, the second rvole setup message if we are both receivers.
func (r *round3) parseDirect(j round.PartyID, payload []byte) (*secp256k1.ModNScalar, []byte, error) {
	wantShare := r.isDealer(j) && r.isReceiver(r.self)
	wantSetup := r.isReceiver(j) && r.isReceiver(r.self)
	n := 0
	if wantShare {
		n++
	}
	if wantSetup {
		n++
	}
	if n == 0 {
		if len(payload) != 0 {
			return nil, nil, errors.New("keygen: unexpected direct payload")
		}
		return nil, nil, nil
	}
	f, err := dkls23.SplitFields(payload, n)
	if err != nil {
		return nil, nil, fmt.Errorf("keygen: round 3 direct message: %w", err)
	}
	var s *secp256k1.ModNScalar
	if wantShare {
		s, err = curve.DecodeScalar(f[0])
		if err != nil {
			return nil, nil, fmt.Errorf("keygen: dealt share: %w", err)
		}
		f = f[1:]
	}
	var m2 []byte
	if wantSetup {
		m2 = f[0]
	}
	return s, m2, nil
}

func (r *round3) StoreMessage(m *round.Message) error {
	if m.IsBroadcast() {
		C, err := r.parseOpening(m.From, m.Payload)
		if err != nil {
			return err
		}
		if C != nil {
			r.openings[m.From] = C
		}
		return nil
	}
	s, m2, err := r.parseDirect(m.From, m.Payload)
	if err != nil {
		return err
	}
	if s != nil {
		r.dealt[m.From] = s
	}
	if st := r.bobSetup[m.From]; st != nil {
		b, err := st.Finish(m2)
		if err != nil {
			return fmt.Errorf("keygen: rvole setup: %w", err)
		}
		r.bob[m.From] = b
	}
	return nil
}

// wipeTransient zeroes the secrets that never reach the output: the
// round-2 secrets and the shares dealt to us.
func (r *round3) wipeTransient() {
	r.round2.Wipe()
	for _, s := range r.dealt {
		s.Zero()
	}
}

// Wipe zeroes every secret of a run that ends here, the new random-VOLE
// setups included (round.Wiper).
func (r *round3) Wipe() {
	r.wipeTransient()
	for _, a := range r.alice {
		a.Zero()
	}
	for _, b := range r.bob {
		b.Zero()
	}
}

// Finalize implements round 3 (see the package doc).
func (r *round3) Finalize() ([]*round.Message, round.Round, error) {
	// Our own opening.
	if r.isDealer(r.self) {
		C := make([]secp256k1.JacobianPoint, len(r.coeffs))
		for k, c := range r.coeffs {
			p, err := curve.DecodePoint(c)
			if err != nil {
				return nil, nil, err
			}
			C[k] = *p
		}
		r.openings[r.self] = C
	}
	// Feldman check of every share dealt to us: g_j(i)·G = Σ_k i^k·C_j,k.
	if r.isReceiver(r.self) {
		var bad []round.PartyID
		for _, j := range r.dealers {
			if j == r.self {
				continue
			}
			var got secp256k1.JacobianPoint
			curve.ScalarBaseMult(r.dealt[j], &got)
			want := evaluatePoints(r.openings[j], r.self)
			if !dkls23.EqualPoints(&got, want) {
				bad = append(bad, j)
			}
		}
		if len(bad) > 0 {
			return nil, nil, round.Abort(errors.New("keygen: dealt share does not match the commitments"), bad...)
		}
	}
	// Sum the commitment vectors: the public polynomial of the new sharing.
	sum := make([]secp256k1.JacobianPoint, r.threshold)
	for _, j := range r.dealers {
		for k := range sum {
			secp256k1.AddNonConst(&sum[k], &r.openings[j][k], &sum[k])
		}
	}
	pk := sum[0]
	pk.ToAffine()
	if curve.IsIdentity(&pk) {
		return nil, nil, errors.New("keygen: the public key is the identity")
	}
	if !r.isKeygen && !dkls23.EqualPoints(&pk, r.oldPublic) {
		// Every dealt constant was checked against its dealer's old
		// public share, so this means too few dealers.
		return nil, nil, errors.New("keygen: the dealt constants do not sum to the public key (too few dealers?)")
	}
	shares := make([]secp256k1.JacobianPoint, len(r.receivers))
	for k, p := range r.receivers {
		shares[k] = *evaluatePoints(sum, p)
		if curve.IsIdentity(&shares[k]) {
			return nil, nil, fmt.Errorf("keygen: public share of %v is the identity", p)
		}
	}
	digest := r.digest(&pk, shares)
	next := &round4{round3: r, digest: digest, pk: pk, shares: shares}
	if r.isReceiver(r.self) {
		var x secp256k1.ModNScalar
		for _, j := range r.dealers {
			x.Add(r.dealt[j])
		}
		peers := map[round.PartyID]*dkls23.Peer{}
		for _, p := range r.receivers {
			if p == r.self {
				continue
			}
			seed := r.seed(r.self, p, r.mySeeds[p], r.seeds[p])
			peers[p] = dkls23.NewPeer(r.alice[p], r.bob[p], &seed)
			clear(seed[:])
		}
		share, err := dkls23.NewShare(r.threshold, r.self, r.receivers, r.sid, &x, &pk, shares, peers)
		x.Zero()
		if err != nil {
			return nil, nil, fmt.Errorf("keygen: %w", err)
		}
		next.share = share
	}
	for k := range r.poly {
		r.poly[k].Zero()
	}
	for _, s := range r.dealt {
		s.Zero()
	}
	out := []*round.Message{{To: round.Broadcast, Payload: digest}}
	for _, p := range r.all {
		if p == r.self {
			continue
		}
		var tag []byte
		if next.share != nil && r.isReceiver(p) {
			tag = r.seedTag(r.self, p, next.share.Peer(p).Seed())
		}
		out = append(out, &round.Message{To: p, Payload: tag})
	}
	r.trace(next)
	return out, next, nil
}

// seedTag confirms the F_Zero seed of the pair (from, to) without revealing
// it: a party whose seed contribution was altered on its way ends up with a
// different seed, and the check in round 4 aborts instead of leaving a key
// whose zero shares do not cancel.
func (r *round3) seedTag(from, to round.PartyID, seed [dkls23.SeedLen]byte) []byte {
	t := round.NewTranscript("keymesh/dkls23/keygen/seed-confirm")
	t.WriteBytes(r.sid[:])
	t.WriteUint64(uint64(from))
	t.WriteUint64(uint64(to))
	t.WriteBytes(seed[:])
	return t.Sum(nil)
}

// digest is what every party broadcasts in round 3 and checks in round 4:
// a hash of the public result.
func (r *round3) digest(pk *secp256k1.JacobianPoint, shares []secp256k1.JacobianPoint) []byte {
	t := round.NewTranscript("keymesh/dkls23/keygen/result")
	t.WriteBytes(r.sid[:])
	t.WriteBytes(curve.EncodePoint(pk))
	t.WriteBytes(encodeParties(r.receivers))
	for k := range shares {
		t.WriteBytes(curve.EncodePoint(&shares[k]))
	}
	return t.Sum(nil)
}

// evaluatePoints returns Σ_k x^k·C_k (public values, variable time).
func evaluatePoints(C []secp256k1.JacobianPoint, x round.PartyID) *secp256k1.JacobianPoint {
	xs := dkls23.Scalar(x)
	var acc secp256k1.JacobianPoint
	for k := len(C) - 1; k >= 0; k-- {
		var t secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(&xs, &acc, &t)
		secp256k1.AddNonConst(&t, &C[k], &acc)
	}
	acc.ToAffine()
	return &acc
}
