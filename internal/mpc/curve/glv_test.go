package curve

import (
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// TestGLVSplit checks k ≡ ±k1 ± k2·λ with both halves below 2^128, for edge
// and random scalars.
func TestGLVSplit(t *testing.T) {
	r := testRand(t)
	ks := edgeScalars(t)
	for range 2000 {
		ks = append(ks, randScalar(t, r))
	}
	var lambda secp256k1.ModNScalar
	lambda.NegateVal(&glvNegLambda)
	for _, k := range ks {
		k1, k2, n1, n2 := glvSplit(k)
		for _, h := range []*secp256k1.ModNScalar{&k1, &k2} {
			b := h.Bytes()
			for i := range 16 {
				if b[i] != 0 {
					t.Fatalf("half of %x is not below 2^128", k.Bytes())
				}
			}
		}
		s1, s2 := k1, k2
		if n1 == 1 {
			s1.Negate()
		}
		if n2 == 1 {
			s2.Negate()
		}
		var sum secp256k1.ModNScalar
		sum.Mul2(&s2, &lambda).Add(&s1)
		if !sum.Equals(k) {
			t.Fatalf("split of %x does not recombine", k.Bytes())
		}
	}
}

// TestEndomorphism checks φ(P) = (β·x, y) = λ·P.
func TestEndomorphism(t *testing.T) {
	r := testRand(t)
	var lambda secp256k1.ModNScalar
	lambda.NegateVal(&glvNegLambda)
	var p, want secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &p)
	p.ToAffine()
	secp256k1.ScalarMultNonConst(&lambda, &p, &want)
	want.ToAffine()
	var bx secp256k1.FieldVal
	bx.Mul2(&p.X, &glvBeta).Normalize()
	if !bx.Equals(&want.X) || !p.Y.Equals(&want.Y) {
		t.Fatal("φ(P) != λ·P")
	}
}
