package rvole

import (
	"encoding/binary"
	"math/bits"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
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
	p := curve.MulWide((*[4]uint64)(a), (*[4]uint64)(b))
	var c uint64
	for k := range 8 {
		w[k], c = bits.Add64(w[k], p[k], c)
	}
	w[8] += c
}

// qc holds c = 2^256 − q (129 bits) as little-endian limbs: q = 2^256 − c,
// so 2^256 ≡ c (mod q).
var qc = [3]uint64{0x402da1732fc9bebf, 0x4551231950b75fc4, 0x1}

// fold returns lo + hi·c for in = lo (limbs 0–3) + hi·2^256 (limbs 4–8),
// which is ≡ in (mod q). Each fold shrinks the value by about 127 bits.
func fold(in *[9]uint64) [9]uint64 {
	var out [9]uint64
	copy(out[:4], in[:4])
	for i := range 5 {
		var carry uint64
		for j := range 3 {
			hi, lo := bits.Mul64(in[4+i], qc[j])
			var c uint64
			lo, c = bits.Add64(lo, out[i+j], 0)
			hi += c
			lo, c = bits.Add64(lo, carry, 0)
			hi += c
			out[i+j] = lo
			carry = hi
		}
		for k := i + 3; k < 9; k++ {
			out[k], carry = bits.Add64(out[k], carry, 0)
		}
	}
	return out
}

// reduce returns the accumulated sum mod q, in constant time: four folds
// take any 576-bit value below 2^256 (2^576 → 2^450 → 2^323 → 2^257 →
// 2^256), then one conditional subtraction of q.
func (w *wideAcc) reduce() secp256k1.ModNScalar {
	v := [9]uint64(*w)
	for range 4 {
		v = fold(&v)
	}
	// t = v + c; a carry out of 2^256 means v ≥ q, and then t mod 2^256
	// = v − q.
	var t [4]uint64
	var carry uint64
	t[0], carry = bits.Add64(v[0], qc[0], 0)
	t[1], carry = bits.Add64(v[1], qc[1], carry)
	t[2], carry = bits.Add64(v[2], qc[2], carry)
	t[3], carry = bits.Add64(v[3], 0, carry)
	mask := -carry
	var b [32]byte
	for k := range 4 {
		binary.BigEndian.PutUint64(b[24-8*k:], (v[k]&^mask)|(t[k]&mask))
	}
	var r secp256k1.ModNScalar
	r.SetBytes(&b) // below q: no reduction happens
	clear(b[:])
	clear(v[:])
	clear(t[:])
	return r
}

// addScalar adds x (as limbs) to the accumulator.
func (w *wideAcc) addScalar(x *limbs) {
	var c uint64
	for k := range 4 {
		w[k], c = bits.Add64(w[k], x[k], c)
	}
	for k := 4; k < 9; k++ {
		w[k], c = bits.Add64(w[k], 0, c)
	}
}
