//go:build keymesh_adversary

package rvole

import (
	"errors"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// TestingOnlyStartWithChoices is (*BobSetup).Start for a cheating Bob who
// sets every OT-extension choice bit ω_j to choice (0 or 1) instead of
// sampling them. Alice cannot tell: the message is well formed and passes
// her checks. It exists only in builds with the keymesh_adversary tag.
//
// Two multiplications under one sid, one with choice 0 and one with choice
// 1, give Bob both of Alice's pads of every OT, and with them her inputs
// (TestingOnlyRecoverInput). That is the attack the fresh session IDs of
// package round defeat.
func TestingOnlyStartWithChoices(b *BobSetup, sid []byte, beta *secp256k1.ModNScalar, choice byte, rand io.Reader) (*BobMul, []byte, error) {
	if choice > 1 {
		return nil, nil, errors.New("rvole: a choice bit is 0 or 1")
	}
	omega := make([]byte, Xi)
	for j := range omega {
		omega[j] = choice
	}
	return b.start(sid, beta, omega, rand)
}

// TestingOnlyRecoverInput returns Alice's input a_i from her replies msg2Zero
// and msg2One to two multiplications that Bob started under the same sid
// with every choice bit 0 and every choice bit 1
// (TestingOnlyStartWithChoices), when a_i was the same in both.
//
// Why: in the OT extension (package kos) Alice's row is q_j = t_j ⊕ ω_j·Δ,
// with t_j fixed by the setup and the sid, and her pads are α⁰_j = H(q_j),
// α¹_j = H(q_j ⊕ Δ). With ω = 0…0 she sends ã_{j,i} = H(t_j) − H(t_j ⊕ Δ) +
// a_i; with ω = 1…1, ã′_{j,i} = H(t_j ⊕ Δ) − H(t_j) + a_i. The pads cancel:
// a_i = (ã_{j,i} + ã′_{j,i})/2, for any OT j (j = 0 here). Under different
// sids the pads do not cancel and the result is unrelated to a_i. It exists
// only in builds with the keymesh_adversary tag.
func TestingOnlyRecoverInput(msg2Zero, msg2One []byte, i int) (*secp256k1.ModNScalar, error) {
	var sum secp256k1.ModNScalar
	for _, m := range [][]byte{msg2Zero, msg2One} {
		if len(m) < 2 || m[0] != version {
			return nil, errors.New("rvole: malformed message 2")
		}
		ell := int(m[1])
		if ell < 1 || ell > MaxEll || len(m) != Msg2Len(ell) || i < 0 || i >= ell {
			return nil, errors.New("rvole: malformed message 2 or input index out of range")
		}
		// ã_{0,i}: OT j = 0, column i.
		var a secp256k1.ModNScalar
		if a.SetByteSlice(m[2+32*i : 2+32*i+32]) {
			return nil, errors.New("rvole: ã is not a scalar")
		}
		sum.Add(&a)
	}
	var two secp256k1.ModNScalar
	two.SetInt(2)
	two.InverseNonConst()
	return sum.Mul(&two), nil
}
