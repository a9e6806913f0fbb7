package dkls23

import (
	"errors"
	"fmt"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Scalar returns the party ID p as a scalar, its Shamir evaluation point.
func Scalar(p round.PartyID) secp256k1.ModNScalar {
	var s secp256k1.ModNScalar
	s.SetInt(uint32(p))
	return s
}

// Lagrange returns the Lagrange coefficient λ_self of the set parties at 0:
// the product over j ≠ self of j / (j − self), so that
// Σ_{i ∈ parties} λ_i · f(i) = f(0) for every polynomial f of degree below
// len(parties). Parties must be distinct, non-zero and include self; party
// IDs are small integers (below 2^16) so they are distinct mod q as well.
func Lagrange(parties []round.PartyID, self round.PartyID) (*secp256k1.ModNScalar, error) {
	ps, err := round.SortParties(parties)
	if err != nil {
		return nil, fmt.Errorf("dkls23: %w", err)
	}
	if !slices.Contains(ps, self) {
		return nil, fmt.Errorf("dkls23: %v is not in the set", self)
	}
	var num, den secp256k1.ModNScalar
	num.SetInt(1)
	den.SetInt(1)
	xi := Scalar(self)
	for _, j := range ps {
		if j == self {
			continue
		}
		xj := Scalar(j)
		num.Mul(&xj)
		var d secp256k1.ModNScalar
		d.NegateVal(&xi).Add(&xj)
		den.Mul(&d)
	}
	if den.IsZero() {
		return nil, errors.New("dkls23: repeated evaluation point")
	}
	den.InverseNonConst() // public values
	return num.Mul(&den), nil
}

// ReduceWide returns b (64 bytes, big-endian) mod q. A 512-bit value
// reduced mod q is within 2^-256 of uniform, so hash outputs of 64 bytes
// make unbiased scalars.
func ReduceWide(b []byte) secp256k1.ModNScalar {
	var hi, lo, two256 secp256k1.ModNScalar
	hi.SetByteSlice(b[:32])
	lo.SetByteSlice(b[32:64])
	// 2^256 mod q = 2^256 − q.
	two256.SetByteSlice([]byte{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0x45, 0x51, 0x23, 0x19, 0x50, 0xb7, 0x5f, 0xc4, 0x40, 0x2d, 0xa1, 0x73, 0x2f, 0xc9, 0xbe, 0xbf,
	})
	hi.Mul(&two256).Add(&lo)
	return hi
}
