package kos

import (
	mrand "math/rand/v2"
	"testing"
)

func naiveClmul128(a, b *[2]uint64) [4]uint64 {
	var r [4]uint64
	for i := range 128 {
		if (a[i/64]>>(i%64))&1 == 0 {
			continue
		}
		for j := range 128 {
			if (b[j/64]>>(j%64))&1 == 1 {
				k := i + j
				r[k/64] ^= 1 << (k % 64)
			}
		}
	}
	return r
}

func TestClmul128(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{9})
	cases := [][2][2]uint64{
		{{^uint64(0), ^uint64(0)}, {^uint64(0), ^uint64(0)}},
		{{1, 0}, {0, 1 << 63}},
		{{0, 0}, {5, 7}},
	}
	for range 500 {
		cases = append(cases, [2][2]uint64{{r.Uint64(), r.Uint64()}, {r.Uint64(), r.Uint64()}})
	}
	for _, c := range cases {
		if got, want := clmul128(&c[0], &c[1]), naiveClmul128(&c[0], &c[1]); got != want {
			t.Fatalf("clmul128(%x, %x) = %x, want %x", c[0], c[1], got, want)
		}
	}
}

func TestTranspose(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{10})
	const nw = 3
	var cols [Kappa][]uint64
	for i := range cols {
		cols[i] = make([]uint64, nw)
		for w := range cols[i] {
			cols[i][w] = r.Uint64()
		}
	}
	rows := transpose(&cols, nw)
	for j := range 64 * nw {
		for i := range Kappa {
			cb := (cols[i][j/64] >> (j % 64)) & 1
			rb := (rows[j][i/64] >> (i % 64)) & 1
			if cb != rb {
				t.Fatalf("row %d bit %d = %d, column bit = %d", j, i, rb, cb)
			}
		}
	}
}
