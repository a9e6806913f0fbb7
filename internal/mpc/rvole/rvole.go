// Package rvole is the two-party random-VOLE (vector oblivious linear
// evaluation) multiplication that DKLs23 signing uses: F_RVOLE(q, ℓ) of
// Doerner, Kondi, Lee and shelat, "Threshold ECDSA in Three Rounds" (IEEE S&P
// 2024, ePrint 2023/765), Functionality 3.5, realised by their Protocol 5.2
// (π_RVOLE), which is the multiplication of DKLs19 ("Threshold ECDSA from
// ECDSA Assumptions: The Multiparty Case", IEEE S&P 2019, Protocol 1) in its
// two-message "forced reuse" form, on the OT extension of package kos
// (base OTs from package baseot).
//
// Roles: Alice has a vector input a ∈ Zq^ℓ and is the OT-extension sender
// (the base-OT receiver); Bob has a scalar input β and is the OT-extension
// receiver (the base-OT sender). The outputs are additive shares
// c[k] + d[k] = a[k]·β (mod q), c to Alice and d to Bob.
//
// Parameters: ξ = |q| + 2σ = 256 + 160 = 416 OTs per multiplication
// (σ = 80 statistical); ρ = ⌈κ/|q|⌉ = 1 check column (κ = 128: a cheating
// Alice passes the check with probability about q^-ρ ≤ 2^-κ); a public
// gadget vector g ∈ Zq^ξ hashed from a fixed string.
//
// The protocol, with the names of Protocol 5.2:
//
//  1. Bob: random choice bits ω ∈ {0,1}^ξ (his randomised encoding: the
//     random input b = ⟨g, ω⟩ is statistically close to uniform even given
//     any σ bits of ω, which defeats selective failure on the OTs); runs the
//     OT extension with choices ω; sends the extension message and
//     δ = β − b. (The correction δ is our addition, to take a chosen β as
//     the API does: b is uniform, so δ hides β; Alice folds a·δ into c.)
//  2. Alice: from the OT pads (α⁰_j, α¹_j ∈ Zq^{ℓ+ρ}) computes
//     c_i = −Σ_j g_j·α⁰_{j,i} + a_i·δ; samples â ∈ Zq^ρ; sends
//     ã_{j,i} = α⁰_{j,i} − α¹_{j,i} + a_i (and â_k in the ρ check columns),
//     η_k = â_k + Σ_i θ_{i,k}·a_i and μ = H(sid, {α⁰_{j,ℓ+k} + Σ_i θ_{i,k}·α⁰_{j,i}}),
//     where θ = H(sid, msg1, ã) ∈ Zq^{ℓ×ρ}.
//  3. Bob: ḋ_{j,i} = γ_{j,i} + ω_j·ã_{j,i} (γ_j his pad), d_i = Σ_j g_j·ḋ_{j,i};
//     recomputes μ' from ḋ_{j,ℓ+k} + Σ_i θ_{i,k}·ḋ_{j,i} − ω_j·η_k and aborts
//     unless μ' = μ. This check catches an Alice who used different a_i in
//     different OTs.
//
// Sizes: setup messages of 98 and 4,224 bytes; per multiplication with
// ℓ = 2, msg1 is 10,321 bytes (δ and the KOS matrix) and msg2 40,002 bytes
// (ξ·(ℓ+ρ) = 1,248 scalars), about 50 KB per ordered pair.
//
// Usage:
//
//  1. Once per ordered pair (inside DKG and refresh), two messages:
//     Bob: SetupBob → msg1 to Alice; Alice: SetupAlice(msg1) → msg2 to Bob;
//     Bob: (*BobSetupState).Finish(msg2). AliceSetup and BobSetup are the
//     long-term secret seeds; store them with MarshalBinary.
//  2. Per multiplication, two messages: Bob: (*BobSetup).Start(β) → msg1;
//     Alice: (*AliceSetup).Multiply(a, msg1) → (c, msg2); Bob:
//     (*BobMul).Finish(msg2) → d.
//
// The sid of each multiplication must be unique per session AND per ordered
// pair, and Alice must answer at most one msg1 per sid: two extensions under
// one sid would reveal her OT-extension secret Δ. The caller binds its
// session ID, the pair and the key id into sid. Any failed check returns an
// error wrapping ErrCheatDetected; the caller blames the peer whose message
// was being processed, and must refuse that peer's setup from then on, in
// every open session too (a failed OT-extension check leaks a bit of Δ;
// package sign does this through dkls23.Share.Refuse). A multiplication
// that will not be finished is wiped with (*BobMul).Wipe, and a setup that
// is replaced with Zero.
package rvole

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/ot/kos"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

const (
	// Xi is ξ, the number of OTs per multiplication.
	Xi = 256 + 2*80
	// Rho is ρ = ⌈κ/|q|⌉, the number of check columns.
	Rho = 1
	// MaxEll bounds ℓ, the length of Alice's input.
	MaxEll = 64

	version = 1
)

// ErrCheatDetected is wrapped by every error that proves the peer deviated
// from the protocol (a failed consistency check, a malformed message).
var ErrCheatDetected = errors.New("rvole: peer cheated")

var errUsed = errors.New("rvole: state already used (one-shot)")

var (
	gadgetOnce  sync.Once
	gadget      []secp256k1.ModNScalar
	gadgetLimbs []limbs
)

func initGadget() {
	gadget = hashScalars(round.NewTranscript("keymesh rvole gadget v1"), Xi)
	gadgetLimbs = make([]limbs, Xi)
	for j := range gadget {
		gadgetLimbs[j] = toLimbs(&gadget[j])
	}
}

// g returns the public gadget vector: ξ scalars hashed from a fixed string.
func g() []secp256k1.ModNScalar {
	gadgetOnce.Do(initGadget)
	return gadget
}

// gLimbs returns the gadget vector as limbs, for wideAcc.
func gLimbs() []limbs {
	gadgetOnce.Do(initGadget)
	return gadgetLimbs
}

// hashScalars reads n scalars from a transcript, 32 bytes each reduced mod
// q (bias below 2^-127).
func hashScalars(t *round.Transcript, n int) []secp256k1.ModNScalar {
	b := t.Read(nil, 32*n)
	out := make([]secp256k1.ModNScalar, n)
	for i := range out {
		out[i].SetByteSlice(b[32*i : 32*i+32])
	}
	return out
}

func bytesToScalars(b []byte, out []secp256k1.ModNScalar) {
	for i := range out {
		out[i].SetByteSlice(b[32*i : 32*i+32])
	}
	clear(b)
}

// BobSetupState is Bob's state between SetupBob and Finish.
type BobSetupState struct {
	st *kos.ReceiverSetupState
}

// AliceSetup is Alice's long-term secret seed for one ordered pair. It never
// prints; it has no String method and no exported fields.
type AliceSetup struct {
	ext kos.SenderSetup
}

// BobSetup is Bob's long-term secret seed for one ordered pair. It never
// prints; it has no String method and no exported fields.
type BobSetup struct {
	ext kos.ReceiverSetup
}

func setupSID(sid []byte) []byte {
	t := round.NewTranscript("keymesh rvole setup v1")
	t.WriteBytes(sid)
	return t.Sum(nil)
}

// SetupBob starts the pairwise setup and returns the message for Alice.
func SetupBob(sid []byte, rand io.Reader) (*BobSetupState, []byte, error) {
	st, msg, err := kos.NewReceiverSetup(setupSID(sid), rand)
	if err != nil {
		return nil, nil, fmt.Errorf("rvole: setup: %w", err)
	}
	return &BobSetupState{st: st}, msg, nil
}

// SetupAlice answers Bob's setup message and returns Alice's seed and the
// message for Bob. An error wrapping ErrCheatDetected blames Bob.
func SetupAlice(sid []byte, msg1 []byte, rand io.Reader) (*AliceSetup, []byte, error) {
	s, msg, err := kos.NewSenderSetup(setupSID(sid), msg1, rand)
	if err != nil {
		return nil, nil, wrapKOS("setup", err)
	}
	return &AliceSetup{ext: *s}, msg, nil
}

// Finish completes Bob's setup. An error wrapping ErrCheatDetected blames
// Alice. Finish may be called once.
func (s *BobSetupState) Finish(msg2 []byte) (*BobSetup, error) {
	r, err := s.st.Finish(msg2)
	if err != nil {
		return nil, wrapKOS("setup", err)
	}
	return &BobSetup{ext: *r}, nil
}

func wrapKOS(what string, err error) error {
	if errors.Is(err, kos.ErrCheck) {
		return fmt.Errorf("%w: %s: %w", ErrCheatDetected, what, err)
	}
	return fmt.Errorf("rvole: %s: %w", what, err)
}

// Setup encodings: version byte, role byte ('A' or 'B'), then the OT
// extension secret (package kos).
const (
	aliceSetupLen = 2 + kos.SenderSetupLen
	bobSetupLen   = 2 + kos.ReceiverSetupLen
)

// MarshalBinary returns the versioned, canonical encoding of the seed.
func (a *AliceSetup) MarshalBinary() ([]byte, error) {
	b, err := a.ext.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append([]byte{version, 'A'}, b...), nil
}

// UnmarshalBinary parses an encoding made by MarshalBinary, strictly: wrong
// version, role or length is an error and leaves a unchanged.
func (a *AliceSetup) UnmarshalBinary(b []byte) error {
	if len(b) != aliceSetupLen || b[0] != version || b[1] != 'A' {
		return errors.New("rvole: invalid Alice setup encoding")
	}
	var e kos.SenderSetup
	if err := e.UnmarshalBinary(b[2:]); err != nil {
		return fmt.Errorf("rvole: Alice setup: %w", err)
	}
	a.ext = e
	return nil
}

// Equal reports, in constant time, whether a and o hold the same seed.
func (a *AliceSetup) Equal(o *AliceSetup) bool { return a.ext.Equal(&o.ext) }

// MarshalBinary returns the versioned, canonical encoding of the seed.
func (b *BobSetup) MarshalBinary() ([]byte, error) {
	e, err := b.ext.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append([]byte{version, 'B'}, e...), nil
}

// UnmarshalBinary parses an encoding made by MarshalBinary, strictly: wrong
// version, role or length is an error and leaves b unchanged.
func (b *BobSetup) UnmarshalBinary(data []byte) error {
	if len(data) != bobSetupLen || data[0] != version || data[1] != 'B' {
		return errors.New("rvole: invalid Bob setup encoding")
	}
	var e kos.ReceiverSetup
	if err := e.UnmarshalBinary(data[2:]); err != nil {
		return fmt.Errorf("rvole: Bob setup: %w", err)
	}
	b.ext = e
	return nil
}

// Equal reports, in constant time, whether b and o hold the same seed.
func (b *BobSetup) Equal(o *BobSetup) bool { return b.ext.Equal(&o.ext) }

// Zero overwrites the seed in place (the OT-extension secrets: Alice's Δ and
// base-OT keys). The setup is unusable afterwards. Key schedules that package
// kos derived from the seeds and cached are dropped, not overwritten: the
// standard library's AES offers no way to clear them.
func (a *AliceSetup) Zero() { a.ext = kos.SenderSetup{} }

// Zero overwrites the seed in place (both base-OT keys of every column). The
// setup is unusable afterwards; cached key schedules are dropped, as for
// AliceSetup.Zero.
func (b *BobSetup) Zero() { b.ext = kos.ReceiverSetup{} }

// Msg1Len returns the length of Bob's multiplication message: version, δ,
// the OT-extension message.
func Msg1Len() int { return 1 + curve.ScalarLen + kos.MsgLen(Xi) }

// Msg2Len returns the length of Alice's multiplication message for ℓ
// inputs: version, ℓ, ã (ξ·(ℓ+ρ) scalars), η (ρ scalars), μ (32 bytes).
func Msg2Len(ell int) int { return 2 + (Xi*(ell+Rho)+Rho)*curve.ScalarLen + 32 }

func extSID(sid []byte) []byte {
	t := round.NewTranscript("keymesh rvole extension v1")
	t.WriteBytes(sid)
	return t.Sum(nil)
}

// Large fields (msg1, ã, μ: tens of KB) enter the cSHAKE256 transcripts as
// their SHA-256 digests, which the hardware computes several times faster.

func msg1Digest(sid, msg1 []byte) []byte {
	d := sha256.Sum256(msg1)
	t := round.NewTranscript("keymesh rvole msg1 v1")
	t.WriteBytes(sid)
	t.WriteBytes(d[:])
	return t.Sum(nil)
}

// theta derives θ ∈ Zq^{ℓ×ρ} (θ[i*Rho+k]) from sid, msg1 and ã.
func theta(sid, d1, aTilde []byte, ell int) []secp256k1.ModNScalar {
	t := round.NewTranscript("keymesh rvole theta v1")
	t.WriteBytes(sid)
	t.WriteBytes(d1)
	d := sha256.Sum256(aTilde)
	t.WriteBytes(d[:])
	return hashScalars(t, ell*Rho)
}

// muHash hashes the ξ·ρ values μ_{j,k}.
func muHash(sid []byte, mu []secp256k1.ModNScalar) []byte {
	buf := make([]byte, 32*len(mu))
	for i := range mu {
		mu[i].PutBytesUnchecked(buf[32*i:])
	}
	d := sha256.Sum256(buf)
	clear(buf)
	t := round.NewTranscript("keymesh rvole mu v1")
	t.WriteBytes(sid)
	t.WriteBytes(d[:])
	return t.Sum(nil)
}

// BobMul is Bob's state for one multiplication. It is one-shot: Finish may
// be called once, whatever its result.
type BobMul struct {
	sid   []byte
	d1    []byte
	omega []byte // ω_j ∈ {0, 1}
	ext   *kos.ReceiverOutput
	used  bool
}

// Start begins one multiplication with Bob's input beta and returns the
// round-1 message for Alice. sid must never repeat for this setup.
func (b *BobSetup) Start(sid []byte, beta *secp256k1.ModNScalar, rand io.Reader) (*BobMul, []byte, error) {
	rb := make([]byte, Xi/8)
	if _, err := io.ReadFull(rand, rb); err != nil {
		return nil, nil, fmt.Errorf("rvole: reading randomness: %w", err)
	}
	omega := make([]byte, Xi)
	for j := range omega {
		omega[j] = (rb[j/8] >> (j % 8)) & 1
	}
	clear(rb)
	return b.start(sid, beta, omega, rand)
}

// start is Start with the choice bits ω given (each 0 or 1); it takes
// ownership of omega. Only Start and the keymesh_adversary build's hook
// call it: honest choice bits are random.
func (b *BobSetup) start(sid []byte, beta *secp256k1.ModNScalar, omega []byte, rand io.Reader) (*BobMul, []byte, error) {
	// b = ⟨g, ω⟩, in constant time: ω_j·g_j by masking g_j's encoding.
	gs := g()
	var bb, tmp secp256k1.ModNScalar
	var gb [32]byte
	for j := range omega {
		gs[j].PutBytes(&gb)
		mask := -omega[j]
		for k := range gb {
			gb[k] &= mask
		}
		tmp.SetBytes(&gb)
		bb.Add(&tmp)
	}
	var delta secp256k1.ModNScalar
	delta.NegateVal(&bb).Add(beta)
	bb.Zero()
	tmp.Zero()

	ext, kmsg, err := b.ext.Extend(extSID(sid), omega, rand)
	if err != nil {
		delta.Zero()
		clear(omega)
		return nil, nil, fmt.Errorf("rvole: %w", err)
	}
	msg := make([]byte, 0, Msg1Len())
	msg = append(msg, version)
	msg = append(msg, curve.EncodeScalar(&delta)...)
	msg = append(msg, kmsg...)
	delta.Zero()
	sidc := append([]byte(nil), sid...)
	return &BobMul{sid: sidc, d1: msg1Digest(sidc, msg), omega: omega, ext: ext}, msg, nil
}

// Wipe zeroes Bob's choice bits and drops his OT-extension output, for a
// multiplication that will not be finished (its session aborted). The
// BobMul is unusable afterwards. Finish wipes on its own.
func (m *BobMul) Wipe() {
	m.used = true
	clear(m.omega)
	m.ext = nil
}

// Multiply is Alice's side of one multiplication: given her inputs alpha
// (ℓ = len(alpha), 1 ≤ ℓ ≤ MaxEll) and Bob's round-1 message, it returns
// her shares c (len ℓ) and the message for Bob. An error wrapping
// ErrCheatDetected blames Bob. Alice must call Multiply at most once per
// sid (see the package doc).
func (a *AliceSetup) Multiply(sid []byte, alpha []secp256k1.ModNScalar, msg1 []byte, rand io.Reader) (c []secp256k1.ModNScalar, msg2 []byte, err error) {
	return a.multiply(sid, alpha, msg1, rand, nil)
}

// multiply is Multiply with a hook for tests: testingOnlyTamper, if not
// nil, may change the encoded ã before θ is derived from it while η and μ
// stay those of the honest inputs — what a cheating Alice does.
func (a *AliceSetup) multiply(sid []byte, alpha []secp256k1.ModNScalar, msg1 []byte, rand io.Reader, testingOnlyTamper func(aTilde []byte)) (c []secp256k1.ModNScalar, msg2 []byte, err error) {
	ell := len(alpha)
	if ell < 1 || ell > MaxEll {
		return nil, nil, fmt.Errorf("rvole: ℓ = %d out of range", ell)
	}
	if len(msg1) != Msg1Len() || msg1[0] != version {
		return nil, nil, fmt.Errorf("%w: malformed message 1", ErrCheatDetected)
	}
	delta, err := curve.DecodeScalar(msg1[1 : 1+curve.ScalarLen])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: δ: %w", ErrCheatDetected, err)
	}
	ext, err := a.ext.Extend(extSID(sid), Xi, msg1[1+curve.ScalarLen:])
	if err != nil {
		return nil, nil, wrapKOS("OT extension", err)
	}
	aHat := make([]secp256k1.ModNScalar, Rho)
	for k := range aHat {
		s, err := curve.RandomScalar(rand)
		if err != nil {
			clear(aHat)
			return nil, nil, fmt.Errorf("rvole: %w", err)
		}
		aHat[k] = *s
		s.Zero()
	}

	w := ell + Rho
	gl := gLimbs()
	accC := make([]wideAcc, ell)
	alpha0 := make([]secp256k1.ModNScalar, Xi*w)
	alpha0L := make([]limbs, Xi*w)
	c = make([]secp256k1.ModNScalar, ell)
	msg2 = make([]byte, Msg2Len(ell))
	msg2[0], msg2[1] = version, byte(ell)
	off := 2
	p0, p1 := make([]byte, 32*w), make([]byte, 32*w)
	a1 := make([]secp256k1.ModNScalar, w)
	var tmp secp256k1.ModNScalar
	for j := range Xi {
		ext.Pads(j, p0, p1)
		row := alpha0[j*w : (j+1)*w]
		bytesToScalars(p0, row)
		bytesToScalars(p1, a1)
		for i := range w {
			// ã_{j,i} = α⁰ − α¹ + (a_i or â_k)
			tmp.NegateVal(&a1[i]).Add(&row[i])
			alpha0L[j*w+i] = toLimbs(&row[i])
			if i < ell {
				tmp.Add(&alpha[i])
				accC[i].addMul(&gl[j], &alpha0L[j*w+i])
			} else {
				tmp.Add(&aHat[i-ell])
			}
			tmp.PutBytesUnchecked(msg2[off:])
			off += 32
		}
	}
	clear(a1)
	clear(p0)
	clear(p1)
	for i := range c {
		// c_i = −Σ g_j α⁰_{j,i} + a_i·δ
		c[i] = accC[i].reduce()
		c[i].Negate()
		tmp.Mul2(&alpha[i], delta)
		c[i].Add(&tmp)
	}
	if testingOnlyTamper != nil {
		testingOnlyTamper(msg2[2:])
	}
	th := theta(sid, msg1Digest(sid, msg1), msg2[2:off], ell)
	for k := range Rho {
		// η_k = â_k + Σ_i θ_{i,k}·a_i
		eta := aHat[k]
		for i := range ell {
			tmp.Mul2(&th[i*Rho+k], &alpha[i])
			eta.Add(&tmp)
		}
		eta.PutBytesUnchecked(msg2[off:])
		off += 32
	}
	thL := make([]limbs, len(th))
	for i := range th {
		thL[i] = toLimbs(&th[i])
	}
	mu := make([]secp256k1.ModNScalar, Xi*Rho)
	for j := range Xi {
		row := alpha0L[j*w : (j+1)*w]
		for k := range Rho {
			// μ_{j,k} = α⁰_{j,ℓ+k} + Σ_i θ_{i,k}·α⁰_{j,i}
			var acc wideAcc
			acc.addScalar(&row[ell+k])
			for i := range ell {
				acc.addMul(&thL[i*Rho+k], &row[i])
			}
			mu[j*Rho+k] = acc.reduce()
		}
	}
	copy(msg2[off:], muHash(sid, mu))
	clear(alpha0)
	clear(alpha0L)
	clear(mu)
	clear(aHat)
	clear(accC)
	tmp.Zero()
	return c, msg2, nil
}

// Finish checks Alice's message and returns Bob's shares d, with
// c[k] + d[k] = alpha[k]·beta; len(d) is Alice's ℓ as her message states,
// which the caller must check against the ℓ it expects. An error wrapping
// ErrCheatDetected blames Alice. A BobMul is one-shot: any second call
// fails.
func (m *BobMul) Finish(msg2 []byte) (d []secp256k1.ModNScalar, err error) {
	if m.used {
		return nil, errUsed
	}
	m.used = true
	defer func() {
		clear(m.omega)
		m.ext = nil
	}()
	if len(msg2) < 2 || msg2[0] != version {
		return nil, fmt.Errorf("%w: malformed message 2", ErrCheatDetected)
	}
	ell := int(msg2[1])
	if ell < 1 || ell > MaxEll || len(msg2) != Msg2Len(ell) {
		return nil, fmt.Errorf("%w: malformed message 2", ErrCheatDetected)
	}
	w := ell + Rho
	aTildeBytes := msg2[2 : 2+Xi*w*32]
	aTilde := make([]secp256k1.ModNScalar, Xi*w)
	for i := range aTilde {
		if aTilde[i].SetByteSlice(aTildeBytes[32*i : 32*i+32]) {
			return nil, fmt.Errorf("%w: ã: %w", ErrCheatDetected, curve.ErrInvalidScalar)
		}
	}
	rest := msg2[2+Xi*w*32:]
	eta := make([]secp256k1.ModNScalar, Rho)
	for k := range eta {
		s, err := curve.DecodeScalar(rest[32*k : 32*k+32])
		if err != nil {
			return nil, fmt.Errorf("%w: η: %w", ErrCheatDetected, err)
		}
		eta[k] = *s
	}
	muA := rest[32*Rho:]

	th := theta(m.sid, m.d1, aTildeBytes, ell)
	thL := make([]limbs, len(th))
	for i := range th {
		thL[i] = toLimbs(&th[i])
	}
	gl := gLimbs()
	accD := make([]wideAcc, ell)
	d = make([]secp256k1.ModNScalar, ell)
	mu := make([]secp256k1.ModNScalar, Xi*Rho)
	pad := make([]byte, 32*w)
	dot := make([]secp256k1.ModNScalar, w)
	dotL := make([]limbs, w)
	// ω_j·x is computed by masking x's encoding with ω_j, in constant time.
	var tmp secp256k1.ModNScalar
	var masked [32]byte
	etaBytes := rest[:32*Rho]
	negEta := make([]secp256k1.ModNScalar, Rho)
	for j := range Xi {
		m.ext.Pad(j, pad)
		bytesToScalars(pad, dot)
		mask := -m.omega[j]
		for i := range w {
			// ḋ_{j,i} = γ_{j,i} + ω_j·ã_{j,i}
			src := aTildeBytes[32*(j*w+i):]
			for k := range masked {
				masked[k] = src[k] & mask
			}
			tmp.SetBytes(&masked)
			dot[i].Add(&tmp)
		}
		for k := range Rho {
			for b := range masked {
				masked[b] = etaBytes[32*k+b] & mask
			}
			negEta[k].SetBytes(&masked)
			negEta[k].Negate()
		}
		for i := range w {
			dotL[i] = toLimbs(&dot[i])
		}
		for i := range ell {
			accD[i].addMul(&gl[j], &dotL[i])
		}
		for k := range Rho {
			// μ'_{j,k} = ḋ_{j,ℓ+k} + Σ_i θ_{i,k}·ḋ_{j,i} − ω_j·η_k
			var acc wideAcc
			acc.addScalar(&dotL[ell+k])
			for i := range ell {
				acc.addMul(&thL[i*Rho+k], &dotL[i])
			}
			ne := toLimbs(&negEta[k])
			acc.addScalar(&ne)
			mu[j*Rho+k] = acc.reduce()
		}
	}
	for i := range d {
		d[i] = accD[i].reduce()
	}
	clear(accD)
	clear(dot)
	clear(dotL)
	clear(negEta)
	clear(masked[:])
	tmp.Zero()
	ok := subtle.ConstantTimeCompare(muHash(m.sid, mu), muA) == 1
	clear(mu)
	if !ok {
		clear(d)
		return nil, fmt.Errorf("%w: multiplication check failed", ErrCheatDetected)
	}
	return d, nil
}
