package kos

import "math/bits"

// bmul64 returns the low 64 bits of the carry-less product of x and y, in
// constant time: integer multiplications of the operands with "holes" every
// four bits, so that carries never reach a bit that is kept (the technique
// of BearSSL's ghash_ctmul64; our code).
func bmul64(x, y uint64) uint64 {
	const m0, m1, m2, m3 = 0x1111111111111111, 0x2222222222222222, 0x4444444444444444, 0x8888888888888888
	x0, x1, x2, x3 := x&m0, x&m1, x&m2, x&m3
	y0, y1, y2, y3 := y&m0, y&m1, y&m2, y&m3
	z0 := (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1)
	z1 := (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2)
	z2 := (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3)
	z3 := (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0)
	return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3)
}

// clmul64 returns the 128-bit carry-less product of x and y.
func clmul64(x, y uint64) (hi, lo uint64) {
	lo = bmul64(x, y)
	hi = bits.Reverse64(bmul64(bits.Reverse64(x), bits.Reverse64(y))) >> 1
	return hi, lo
}

// clmul128 returns the 256-bit carry-less product of a and b (words little
// endian), by Karatsuba over clmul64.
func clmul128(a, b *[2]uint64) [4]uint64 {
	h0, l0 := clmul64(a[0], b[0])
	h1, l1 := clmul64(a[1], b[1])
	hm, lm := clmul64(a[0]^a[1], b[0]^b[1])
	hm ^= h0 ^ h1
	lm ^= l0 ^ l1
	return [4]uint64{l0, h0 ^ lm, l1 ^ hm, h1}
}

// transpose64 transposes a 64×64 bit matrix in place: afterwards bit c of
// a[r] is what bit r of a[c] was.
func transpose64(a *[64]uint64) {
	j := 32
	m := uint64(0x00000000FFFFFFFF)
	for j != 0 {
		for k := 0; k < 64; k = (k + j + 1) &^ j {
			t := ((a[k] >> j) ^ a[k+j]) & m
			a[k] ^= t << j
			a[k+j] ^= t
		}
		j >>= 1
		m ^= m << j
	}
}

// transpose turns Kappa columns of nw words each (bit j of column i is
// cols[i][j/64] bit j%64) into 64·nw rows of two words (bit i of row j is
// bit j of column i).
func transpose(cols *[Kappa][]uint64, nw int) [][2]uint64 {
	rows := make([][2]uint64, 64*nw)
	var blk [64]uint64
	for h := range 2 {
		for w := range nw {
			for r := range 64 {
				blk[r] = cols[64*h+r][w]
			}
			transpose64(&blk)
			for c := range 64 {
				rows[64*w+c][h] = blk[c]
			}
		}
	}
	return rows
}

// gfReduce reduces a 256-bit carry-less product (words little endian, bit k
// the coefficient of X^k) modulo P(X) = X^128 + X^7 + X^2 + X + 1, the
// irreducible polynomial of GCM, so that the result is an element of
// GF(2^128) = GF(2)[X]/P in the same bit order (not GCM's reflected one).
// Since X^128 ≡ X^7 + X^2 + X + 1, the high half H folds in as
// H·(X^7 + X^2 + X + 1); the at most 7 bits of that product at degree ≥ 128
// fold in once more and then stay below degree 14. Shifts and XORs only:
// constant time.
func gfReduce(p *[4]uint64) [2]uint64 {
	h0, h1 := p[2], p[3]
	// Degree ≥ 128 part of H·(X^7 + X^2 + X + 1).
	o := h1>>63 ^ h1>>62 ^ h1>>57
	lo := p[0] ^ h0 ^ h0<<1 ^ h0<<2 ^ h0<<7 ^ o ^ o<<1 ^ o<<2 ^ o<<7
	hi := p[1] ^ h1 ^ (h1<<1 | h0>>63) ^ (h1<<2 | h0>>62) ^ (h1<<7 | h0>>57)
	return [2]uint64{lo, hi}
}

// checkSum returns the value of one column (or of the choice vector) that
// the consistency check compares: for a vector v of n+1 blocks of 128 bits
// (2(n+1) words) and weights χ_0 … χ_{n−1}, Σ_b χ_b·v_b + v_n in GF(2^128).
// The last block enters without a weight: it is the mask block of random
// rows that hides the combination of the others. The sum of the unreduced
// products is reduced once (reduction is linear).
func checkSum(v []uint64, chi [][2]uint64) [2]uint64 {
	var acc [4]uint64
	for b := range chi {
		blk := [2]uint64{v[2*b], v[2*b+1]}
		p := clmul128(&chi[b], &blk)
		acc[0] ^= p[0]
		acc[1] ^= p[1]
		acc[2] ^= p[2]
		acc[3] ^= p[3]
	}
	r := gfReduce(&acc)
	n := len(chi)
	r[0] ^= v[2*n]
	r[1] ^= v[2*n+1]
	return r
}
