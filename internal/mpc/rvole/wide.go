package rvole

import (
	"encoding/binary"
	"math/bits"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// limbs is a scalar as four little-endian 64-bit words.
type limbs [4]uint64

func toLimbs(s *secp256k1.ModNScalar) limbs {
	b := s.Bytes()
	l := limbs{
		binary.BigEndian.Uint64(b[24:]), binary.BigEndian.Uint64(b[16:]),
		binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[:8]),
	}
	clear(b[:])
	return l
}

// wideAcc accumulates a sum of up to 2^60 products of scalars as a 576-bit
// integer and reduces it mod q once at the end (lazy reduction): the inner
// products Σ_j g_j·x_j of Protocol 5.2 cost one schoolbook multiplication
// per term instead of a full modular multiplication. Constant time:
// bits.Mul64 and bits.Add64 do not branch on their operands.
type wideAcc [9]uint64

// addMul adds a·b to the accumulator.
func (w *wideAcc) addMul(a, b *limbs) {
	var p [8]uint64
	for i := range 4 {
		var carry uint64
		for j := range 4 {
			hi, lo := bits.Mul64(a[i], b[j])
			var c uint64
			lo, c = bits.Add64(lo, p[i+j], 0)
			hi += c
			lo, c = bits.Add64(lo, carry, 0)
			hi += c
			p[i+j] = lo
			carry = hi
		}
		p[i+4] = carry
	}
	var c uint64
	for k := range 8 {
		w[k], c = bits.Add64(w[k], p[k], c)
	}
	w[8] += c
}

// twoTo256 and twoTo512 are 2^256 mod q and 2^512 mod q.
var twoTo256, twoTo512 = wideConstants()

func wideConstants() (c256, c512 secp256k1.ModNScalar) {
	// 2^256 mod q = 2^256 − q, since q < 2^256 < 2q; the subtraction is
	// done bytewise on the public constant q.
	q := [32]byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
	}
	var c [32]byte
	borrow := 0
	for i := 31; i >= 0; i-- {
		v := -int(q[i]) - borrow
		borrow = 0
		if v < 0 {
			v += 256
			borrow = 1
		}
		c[i] = byte(v)
	}
	c256.SetBytes(&c)
	c512.Mul2(&c256, &c256)
	return c256, c512
}

// reduce returns the accumulated sum mod q.
func (w *wideAcc) reduce() secp256k1.ModNScalar {
	var lo, hi [32]byte
	for k := range 4 {
		binary.BigEndian.PutUint64(lo[24-8*k:], w[k])
		binary.BigEndian.PutUint64(hi[24-8*k:], w[4+k])
	}
	var r, t secp256k1.ModNScalar
	r.SetBytes(&lo) // < 2^256 < 2q: SetBytes reduces it
	t.SetBytes(&hi)
	t.Mul(&twoTo256)
	r.Add(&t)
	t.SetInt(uint32(w[8])) // < 2^32 while fewer than 2^32 terms
	t.Mul(&twoTo512)
	r.Add(&t)
	clear(lo[:])
	clear(hi[:])
	return r
}
