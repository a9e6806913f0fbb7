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

// TestReduceEdges reduces multiples of q and their neighbours, and the
// largest value the accumulator can hold, against decred's arithmetic.
func TestReduceEdges(t *testing.T) {
	var qm1 secp256k1.ModNScalar
	qm1.SetInt(1).Negate() // q−1
	lqm1 := toLimbs(&qm1)
	lq := lqm1
	lq[0]++ // q as an integer (no carry: q's low limb is not all ones)
	one := limbs{1}
	for mult := 1; mult <= 3; mult++ {
		// mult·q − 1, mult·q, mult·q + 1
		var below, at, above wideAcc
		for range mult - 1 {
			below.addScalar(&lq)
		}
		below.addScalar(&lqm1)
		for range mult {
			at.addScalar(&lq)
			above.addScalar(&lq)
		}
		above.addScalar(&one)
		var zero, o secp256k1.ModNScalar
		o.SetInt(1)
		if got := below.reduce(); !got.Equals(&qm1) {
			t.Fatalf("%d·q − 1 reduced wrongly", mult)
		}
		if got := at.reduce(); !got.Equals(&zero) {
			t.Fatalf("%d·q reduced wrongly", mult)
		}
		if got := above.reduce(); !got.Equals(&o) {
			t.Fatalf("%d·q + 1 reduced wrongly", mult)
		}
	}
	// 2^576 − 1: Horner over nine all-ones limbs with decred.
	var w wideAcc
	for k := range w {
		w[k] = ^uint64(0)
	}
	got := w.reduce()
	var want, base, limb secp256k1.ModNScalar
	var bb, lb [32]byte
	bb[23] = 1 // 2^64
	base.SetBytes(&bb)
	for i := 24; i < 32; i++ {
		lb[i] = 0xff
	}
	limb.SetBytes(&lb) // 2^64 − 1
	for range 9 {
		want.Mul(&base).Add(&limb)
	}
	if !got.Equals(&want) {
		t.Fatal("2^576 − 1 reduced wrongly")
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
