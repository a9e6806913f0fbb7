// Package baseot is a batch of n random 1-out-of-2 oblivious transfers: the
// "Simplest OT" of Chou and Orlandi, "The Simplest Protocol for Oblivious
// Transfer" (LATINCRYPT 2015, ePrint 2015/267), §3, over secp256k1, with
// the sender's Schnorr proof of knowledge of its secret as in the Verified
// Simplest OT of Doerner, Kondi, Lee and shelat, "Secure Two-party Threshold
// ECDSA from ECDSA Assumptions" (IEEE S&P 2018, DKLs18), Protocol 7, step 1.
//
// It is the base OT of keymesh's OT extension (package kos): κ = 128 base
// OTs, run once per ordered pair of parties at key generation or refresh.
//
// Protocol (two messages, sender first):
//
//  1. Sender: b ← Zq*, B = b·G; sends B and a Fiat–Shamir Schnorr proof π of
//     knowledge of b bound to sid and B.
//  2. Receiver, with choice bits ω_i: checks π; for each i, a_i ← Zq*,
//     A_i = a_i·G + ω_i·B; sends A_1..A_n. Output k_i = H(sid, i, ω_i, B, A_i,
//     a_i·B).
//  3. Sender: checks every A_i; outputs k⁰_i = H(sid, i, 0, B, A_i, b·A_i)
//     and k¹_i = H(sid, i, 1, B, A_i, b·(A_i − B)).
//
// Defences against the base-OT bugs of "Devious Transfer" (2024): every
// point is decoded strictly (the identity, off-curve and non-canonical
// encodings are rejected, package curve); A_i = B is rejected, so b·(A_i − B)
// is never the identity; every key derivation is a length-prefixed cSHAKE256
// transcript binding sid, the instance index i, the bit, B and A_i; and the
// two outputs of every instance are checked to differ. All multiplications
// by secret scalars are constant time (package curve's batch forms of
// ScalarBaseMult and ScalarMult, and a Table of B for the receiver's a_i·B).
//
// Omitted on purpose: DKLs18's verification round trip (Protocol 7, steps
// 3–5: challenge, response, opening), which would need three more messages
// in the pairwise setup. It lets the receiver check that the sender's pads
// are consistent; in keymesh a sender that derives inconsistent keys only
// makes the OT extension's consistency check (package kos) fail, which names
// it. The receiver's choice bits are perfectly hidden (A_i is uniform given B)
// and a receiver learns both keys only by computing b²·G from b·G (CDH).
//
// Both parties are one-shot: a second Finish fails.
package baseot

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// KeyLen is the length of each OT key.
const KeyLen = 32

// MaxN bounds the batch size.
const MaxN = 1024

// Msg1Len is the length of the sender's message: B, then the proof (R, s).
const Msg1Len = 2*curve.PointLen + curve.ScalarLen

// Msg2Len returns the length of the receiver's message for n OTs.
func Msg2Len(n int) int { return n * curve.PointLen }

// ErrCheat is wrapped by errors that prove the peer deviated.
var ErrCheat = errors.New("baseot: peer cheated")

var errUsed = errors.New("baseot: state already used (one-shot)")

// Key is one OT key. It has no String method.
type Key [KeyLen]byte

// SenderOutput holds both keys of every OT.
type SenderOutput struct {
	k0, k1 []Key
}

// Len returns the number of OTs.
func (o *SenderOutput) Len() int { return len(o.k0) }

// Keys returns the two keys of OT i.
func (o *SenderOutput) Keys(i int) (k0, k1 *Key) { return &o.k0[i], &o.k1[i] }

// ReceiverOutput holds the chosen key of every OT.
type ReceiverOutput struct {
	k []Key
}

// Len returns the number of OTs.
func (o *ReceiverOutput) Len() int { return len(o.k) }

// Key returns the chosen key of OT i.
func (o *ReceiverOutput) Key(i int) *Key { return &o.k[i] }

// Sender is the sender's state between its message and Finish.
type Sender struct {
	sid  []byte
	n    int
	b    secp256k1.ModNScalar
	bB   secp256k1.JacobianPoint // b·B, to derive the k¹ keys
	encB []byte
	used bool
}

func proofChallenge(sid, encB, encR []byte) *secp256k1.ModNScalar {
	t := round.NewTranscript("keymesh baseot pok v1")
	t.WriteBytes(sid)
	t.WriteBytes(encB)
	t.WriteBytes(encR)
	var e secp256k1.ModNScalar
	e.SetByteSlice(t.Sum(nil)) // reduced mod n; bias 2^-128
	return &e
}

// NewSender starts a batch of n OTs under session ID sid and returns the
// message for the receiver.
func NewSender(sid []byte, n int, rand io.Reader) (*Sender, []byte, error) {
	if n < 1 || n > MaxN {
		return nil, nil, fmt.Errorf("baseot: batch size %d out of range", n)
	}
	b, err := curve.RandomScalar(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("baseot: %w", err)
	}
	r, err := curve.RandomScalar(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("baseot: %w", err)
	}
	var B, R secp256k1.JacobianPoint
	curve.ScalarBaseMult(b, &B)
	curve.ScalarBaseMult(r, &R)
	encB, encR := curve.EncodePoint(&B), curve.EncodePoint(&R)
	e := proofChallenge(sid, encB, encR)
	var s secp256k1.ModNScalar
	s.Mul2(e, b).Add(r)
	r.Zero()
	msg := make([]byte, 0, Msg1Len)
	msg = append(msg, encB...)
	msg = append(msg, encR...)
	msg = append(msg, curve.EncodeScalar(&s)...)
	st := &Sender{sid: append([]byte(nil), sid...), n: n, b: *b, encB: encB}
	curve.ScalarMult(b, &B, &st.bB)
	b.Zero()
	return st, msg, nil
}

func deriveKey(out *Key, sid []byte, i int, bit byte, encB, encA []byte, p *secp256k1.JacobianPoint) {
	t := round.NewTranscript("keymesh baseot key v1")
	t.WriteBytes(sid)
	t.WriteUint64(uint64(i))
	t.WriteBytes([]byte{bit})
	t.WriteBytes(encB)
	t.WriteBytes(encA)
	t.WriteBytes(curve.EncodePoint(p))
	copy(out[:], t.Sum(nil))
}

// Finish processes the receiver's message and returns both keys of every
// OT. An error wrapping ErrCheat blames the receiver. Finish is one-shot.
func (s *Sender) Finish(msg2 []byte) (*SenderOutput, error) {
	if s.used {
		return nil, errUsed
	}
	s.used = true
	defer s.b.Zero()
	if len(msg2) != Msg2Len(s.n) {
		return nil, fmt.Errorf("%w: message length %d, want %d", ErrCheat, len(msg2), Msg2Len(s.n))
	}
	out := &SenderOutput{k0: make([]Key, s.n), k1: make([]Key, s.n)}
	As := make([]secp256k1.JacobianPoint, s.n)
	for i := range s.n {
		encA := msg2[i*curve.PointLen : (i+1)*curve.PointLen]
		A, err := curve.DecodePoint(encA)
		if err != nil {
			return nil, fmt.Errorf("%w: OT %d: %w", ErrCheat, i, err)
		}
		if subtle.ConstantTimeCompare(encA, s.encB) == 1 {
			return nil, fmt.Errorf("%w: OT %d: A equals B", ErrCheat, i)
		}
		As[i] = *A
	}
	var negBB secp256k1.JacobianPoint
	negBB.Set(&s.bB)
	negBB.Y.Normalize().Negate(1).Normalize()
	p0 := make([]secp256k1.JacobianPoint, s.n)
	p1 := make([]secp256k1.JacobianPoint, s.n)
	curve.ScalarMultAll(&s.b, As, p0) // b·A_i
	curve.AddAll(p0, &negBB, p1)      // b·A_i − b·B
	defer clear(p0)
	defer clear(p1)
	for i := range s.n {
		encA := msg2[i*curve.PointLen : (i+1)*curve.PointLen]
		if curve.IsIdentity(&p1[i]) || curve.IsIdentity(&p0[i]) {
			return nil, fmt.Errorf("%w: OT %d: degenerate point", ErrCheat, i)
		}
		deriveKey(&out.k0[i], s.sid, i, 0, s.encB, encA, &p0[i])
		deriveKey(&out.k1[i], s.sid, i, 1, s.encB, encA, &p1[i])
		if subtle.ConstantTimeCompare(out.k0[i][:], out.k1[i][:]) == 1 {
			return nil, fmt.Errorf("%w: OT %d: equal keys", ErrCheat, i)
		}
	}
	return out, nil
}

// Receive answers the sender's message for len(choices) OTs, where
// choices[i] is 0 or 1, and returns the chosen keys and the message for the
// sender. An error wrapping ErrCheat blames the sender.
func Receive(sid []byte, choices []byte, msg1 []byte, rand io.Reader) (*ReceiverOutput, []byte, error) {
	n := len(choices)
	if n < 1 || n > MaxN {
		return nil, nil, fmt.Errorf("baseot: batch size %d out of range", n)
	}
	if len(msg1) != Msg1Len {
		return nil, nil, fmt.Errorf("%w: message length %d, want %d", ErrCheat, len(msg1), Msg1Len)
	}
	encB, encR := msg1[:curve.PointLen], msg1[curve.PointLen:2*curve.PointLen]
	B, err := curve.DecodePoint(encB)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: B: %w", ErrCheat, err)
	}
	R, err := curve.DecodePoint(encR)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: proof: %w", ErrCheat, err)
	}
	s, err := curve.DecodeScalar(msg1[2*curve.PointLen:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: proof: %w", ErrCheat, err)
	}
	// Verify s·G == R + e·B (public values, variable time is fine).
	e := proofChallenge(sid, encB, encR)
	var sG, eB, rhs secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(s, &sG)
	secp256k1.ScalarMultNonConst(e, B, &eB)
	secp256k1.AddNonConst(R, &eB, &rhs)
	if !sG.EquivalentNonConst(&rhs) {
		return nil, nil, fmt.Errorf("%w: invalid proof of knowledge", ErrCheat)
	}

	tabB, err := curve.NewTable(B) // n multiplications of B follow
	if err != nil {
		return nil, nil, fmt.Errorf("%w: B: %w", ErrCheat, err)
	}
	as := make([]secp256k1.ModNScalar, n)
	defer clear(as)
	for i, c := range choices {
		if c > 1 {
			return nil, nil, fmt.Errorf("baseot: choice %d is not a bit", i)
		}
		a, err := curve.RandomScalar(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("baseot: %w", err)
		}
		as[i] = *a
		a.Zero()
	}
	aG := make([]secp256k1.JacobianPoint, n)
	aGB := make([]secp256k1.JacobianPoint, n)
	P := make([]secp256k1.JacobianPoint, n)
	defer clear(aG)
	defer clear(aGB)
	defer clear(P)
	curve.ScalarBaseMultAll(as, aG) // a_i·G
	curve.AddAll(aG, B, aGB)        // a_i·G + B
	tabB.MultAll(as, P)             // a_i·B

	out := &ReceiverOutput{k: make([]Key, n)}
	msg2 := make([]byte, 0, Msg2Len(n))
	for i, c := range choices {
		var A secp256k1.JacobianPoint
		curve.Select(&A, &aG[i], &aGB[i], uint32(c))
		if curve.IsIdentity(&A) { // a_i = -ω_i·b: probability 2^-256
			return nil, nil, errors.New("baseot: degenerate A, retry")
		}
		encA := curve.EncodePoint(&A)
		deriveKey(&out.k[i], sid, i, c, encB, encA, &P[i])
		msg2 = append(msg2, encA...)
	}
	return out, msg2, nil
}
