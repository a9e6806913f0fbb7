// Package dlog is a non-interactive Schnorr proof of knowledge of a discrete
// logarithm over secp256k1: given X = x·G, the prover shows it knows x.
//
// It is Schnorr's sigma protocol (C. P. Schnorr, "Efficient signature
// generation by smart cards", J. Cryptology 1991) made non-interactive with
// the Fiat–Shamir transform: A = k·G, e = H(context, X, A), z = k + e·x;
// the verifier checks z·G = A + e·X. keymesh's DKLs23 key generation uses it,
// with a hash commitment opened only after every commitment is in, so that
// no party can choose its contribution to the public key as a function of
// the others' (the proof realises the ideal discrete-logarithm
// zero-knowledge functionality in the random-oracle model).
//
// The hash is a round.Transcript (cSHAKE256 with length-prefixed fields), and
// the caller's context must bind the session ID, the prover's party ID and
// the key or protocol it belongs to, so that a proof replayed from another
// session or by another party fails (TSSHOCK-style replay).
package dlog

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// ProofLen is the length of an encoded proof: A (33) ‖ z (32).
const ProofLen = curve.PointLen + curve.ScalarLen

// ErrInvalidProof is wrapped by every verification failure.
var ErrInvalidProof = errors.New("dlog: invalid proof")

// Prove returns a proof that the caller knows x with X = x·G. context must
// bind the session, the prover and the purpose (see the package doc).
func Prove(context []byte, x *secp256k1.ModNScalar, X *secp256k1.JacobianPoint, rand io.Reader) ([]byte, error) {
	k, err := curve.RandomScalar(rand)
	if err != nil {
		return nil, fmt.Errorf("dlog: %w", err)
	}
	defer k.Zero()
	var A secp256k1.JacobianPoint
	curve.ScalarBaseMult(k, &A)
	a := curve.EncodePoint(&A)
	e := challenge(context, X, a)
	var z secp256k1.ModNScalar
	z.Mul2(e, x).Add(k)
	return append(a, curve.EncodeScalar(&z)...), nil
}

// Verify checks a proof made by Prove for X under the same context.
func Verify(context []byte, X *secp256k1.JacobianPoint, proof []byte) error {
	if len(proof) != ProofLen {
		return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidProof, len(proof), ProofLen)
	}
	if curve.IsIdentity(X) {
		return fmt.Errorf("%w: statement is the identity", ErrInvalidProof)
	}
	A, err := curve.DecodePoint(proof[:curve.PointLen])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	z, err := curve.DecodeScalar(proof[curve.PointLen:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	e := challenge(context, X, proof[:curve.PointLen])
	// Public values: variable-time arithmetic is fine.
	var lhs, eX, rhs secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(z, &lhs)
	secp256k1.ScalarMultNonConst(e, X, &eX)
	secp256k1.AddNonConst(A, &eX, &rhs)
	lhs.ToAffine()
	rhs.ToAffine()
	if !lhs.X.Equals(&rhs.X) || !lhs.Y.Equals(&rhs.Y) || lhs.Z.IsZero() != rhs.Z.IsZero() {
		return ErrInvalidProof
	}
	return nil
}

func challenge(context []byte, X *secp256k1.JacobianPoint, a []byte) *secp256k1.ModNScalar {
	t := round.NewTranscript("keymesh/dlog/v1")
	t.WriteBytes(context)
	t.WriteBytes(curve.EncodePoint(X))
	t.WriteBytes(a)
	// 64 bytes reduced mod q: the bias is below 2^-256.
	wide := t.Read(nil, 64)
	var hi, lo, e secp256k1.ModNScalar
	hi.SetByteSlice(wide[:32])
	lo.SetByteSlice(wide[32:])
	// e = hi·2^256 + lo mod q.
	var two256 secp256k1.ModNScalar
	two256.SetByteSlice(twoTo256ModQ[:])
	e.Mul2(&hi, &two256).Add(&lo)
	return &e
}

// twoTo256ModQ is 2^256 mod q = 2^256 − q.
var twoTo256ModQ = [32]byte{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x45, 0x51, 0x23, 0x19, 0x50, 0xb7, 0x5f, 0xc4, 0x40, 0x2d, 0xa1, 0x73, 0x2f, 0xc9, 0xbe, 0xbf,
}
