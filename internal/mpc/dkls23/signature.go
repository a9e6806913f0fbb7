package dkls23

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keymesh/keymesh/internal/mpc/curve"
)

// DigestLen is the length of a message digest: only digests are signed.
const DigestLen = 32

// SignatureLen is the length of the Ethereum encoding r ‖ s ‖ v.
const SignatureLen = 65

// ErrInvalidSignature is wrapped by the errors of Verify and NewSignature.
var ErrInvalidSignature = errors.New("dkls23: invalid signature")

// Signature is an ECDSA signature over secp256k1 normalised to low s
// (s ≤ q/2, as Ethereum's EIP-2 and Bitcoin's BIP-62 require) with its
// recovery id V: bit 0 is the parity of the y coordinate of the nonce point
// R after normalisation, bit 1 is set when R's x coordinate is not below q
// (probability about 2^-128; Ethereum cannot express it, see Ethereum).
type Signature struct {
	R, S secp256k1.ModNScalar
	V    byte
}

// NewSignature builds the signature (r, s) whose nonce point is bigR,
// normalising s to the lower half and computing the recovery id. r must be
// x(bigR) mod q; s must be non-zero.
func NewSignature(bigR *secp256k1.JacobianPoint, s *secp256k1.ModNScalar) (*Signature, error) {
	if curve.IsIdentity(bigR) {
		return nil, fmt.Errorf("%w: nonce point is the identity", ErrInvalidSignature)
	}
	if s.IsZero() {
		return nil, fmt.Errorf("%w: s is zero", ErrInvalidSignature)
	}
	var p secp256k1.JacobianPoint
	p.Set(bigR)
	p.ToAffine()
	var sig Signature
	xb := p.X.Bytes()
	if overflow := sig.R.SetBytes(xb); overflow != 0 {
		sig.V |= 2
	}
	if sig.R.IsZero() {
		return nil, fmt.Errorf("%w: r is zero", ErrInvalidSignature)
	}
	if p.Y.IsOdd() {
		sig.V |= 1
	}
	sig.S.Set(s)
	if sig.S.IsOverHalfOrder() {
		// (r, −s) is the signature for the nonce point −R, whose y has the
		// other parity.
		sig.S.Negate()
		sig.V ^= 1
	}
	return &sig, nil
}

// Verify checks the signature over digest against the public key pub with
// decred's ecdsa.Verify, and that s is low. It is the verification path every
// signing party runs before it releases a signature.
func (sig *Signature) Verify(pub *secp256k1.JacobianPoint, digest []byte) error {
	if len(digest) != DigestLen {
		return fmt.Errorf("%w: digest of %d bytes, want %d", ErrInvalidSignature, len(digest), DigestLen)
	}
	if sig.R.IsZero() || sig.S.IsZero() {
		return fmt.Errorf("%w: zero r or s", ErrInvalidSignature)
	}
	if sig.S.IsOverHalfOrder() {
		return fmt.Errorf("%w: high s", ErrInvalidSignature)
	}
	if curve.IsIdentity(pub) {
		return fmt.Errorf("%w: public key is the identity", ErrInvalidSignature)
	}
	var p secp256k1.JacobianPoint
	p.Set(pub)
	p.ToAffine()
	pk := secp256k1.NewPublicKey(&p.X, &p.Y)
	if !ecdsa.NewSignature(&sig.R, &sig.S).Verify(digest, pk) {
		return ErrInvalidSignature
	}
	return nil
}

// Ethereum returns the 65-byte encoding r ‖ s ‖ v with v ∈ {0, 1}, the form
// go-ethereum's crypto.Ecrecover and crypto.SigToPub take (add 27 for the
// legacy personal_sign form). A signature whose V has bit 1 set (x(R) ≥ q)
// cannot be recovered by Ethereum; it is still encoded, with v ∈ {2, 3}.
func (sig *Signature) Ethereum() []byte {
	out := make([]byte, 0, SignatureLen)
	r, s := sig.R.Bytes(), sig.S.Bytes()
	out = append(out, r[:]...)
	out = append(out, s[:]...)
	return append(out, sig.V)
}

// ParseEthereum decodes r ‖ s ‖ v strictly: r and s in [1, q), s low,
// v ∈ {0, 1, 2, 3}.
func ParseEthereum(b []byte) (*Signature, error) {
	if len(b) != SignatureLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidSignature, len(b), SignatureLen)
	}
	var sig Signature
	r, err := curve.DecodeNonZeroScalar(b[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: r: %w", ErrInvalidSignature, err)
	}
	s, err := curve.DecodeNonZeroScalar(b[32:64])
	if err != nil {
		return nil, fmt.Errorf("%w: s: %w", ErrInvalidSignature, err)
	}
	if s.IsOverHalfOrder() {
		return nil, fmt.Errorf("%w: high s", ErrInvalidSignature)
	}
	if b[64] > 3 {
		return nil, fmt.Errorf("%w: recovery id %d", ErrInvalidSignature, b[64])
	}
	sig.R, sig.S, sig.V = *r, *s, b[64]
	return &sig, nil
}
