package rvole

import (
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// TestWideAccMatchesModularSum compares the lazily reduced inner product
// with decred's modular arithmetic, including the largest scalars (q-1),
// where the 576-bit accumulator carries into its top word.
func TestWideAccMatchesModularSum(t *testing.T) {
	r := testRand(t)
	for _, n := range []int{1, 2, 3, Xi, 3 * Xi} {
		a := randScalars(t, r, n)
		b := randScalars(t, r, n)
		for trial := range 2 {
			if trial == 1 { // all q-1
				for i := range a {
					a[i].SetInt(1).Negate()
					b[i].SetInt(1).Negate()
				}
			}
			var acc wideAcc
			var want, tmp secp256k1.ModNScalar
			for i := range a {
				la, lb := toLimbs(&a[i]), toLimbs(&b[i])
				acc.addMul(&la, &lb)
				tmp.Mul2(&a[i], &b[i])
				want.Add(&tmp)
			}
			got := acc.reduce()
			if !got.Equals(&want) {
				t.Fatalf("n=%d trial %d: lazy sum differs", n, trial)
			}
		}
	}
	var zero wideAcc
	if z := zero.reduce(); !z.IsZero() {
		t.Fatal("empty sum is not zero")
	}
}

func BenchmarkInnerProductWide(b *testing.B) {
	r := testRand(b)
	x := randScalars(b, r, Xi)
	gl := gLimbs()
	for b.Loop() {
		var acc wideAcc
		for j := range x {
			l := toLimbs(&x[j])
			acc.addMul(&gl[j], &l)
		}
		_ = acc.reduce()
	}
}

func BenchmarkInnerProductModN(b *testing.B) {
	r := testRand(b)
	x := randScalars(b, r, Xi)
	gs := g()
	for b.Loop() {
		var sum, t secp256k1.ModNScalar
		for j := range x {
			t.Mul2(&gs[j], &x[j])
			sum.Add(&t)
		}
	}
}
