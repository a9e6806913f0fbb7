package curve

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Batch forms of the multiplications: a field inversion (to make a result
// affine) costs about a tenth of a ScalarMult, and a batch needs only one,
// by Montgomery's trick. Results are as from the single forms: affine
// (Z = 1), or all zero for the identity. Constant time in the scalars and
// in which results are the identity.

// batchToJacobian writes ps to out in affine form with one inversion.
func batchToJacobian(ps []point, out []secp256k1.JacobianPoint) {
	n := len(ps)
	if n == 0 {
		return
	}
	var one secp256k1.FieldVal
	one.SetInt(1)
	z := make([]secp256k1.FieldVal, n)      // Z_i, or 1 for the identity
	isID := make([]uint32, n)               // 1 for the identity
	prefix := make([]secp256k1.FieldVal, n) // z_0·…·z_i
	for i := range ps {
		z[i].Set(&ps[i].z).Normalize()
		isID[i] = z[i].IsZeroBit()
		cmov(&z[i], &one, -isID[i])
		if i == 0 {
			prefix[0].Set(&z[0])
		} else {
			prefix[i].Mul2(&prefix[i-1], &z[i])
		}
	}
	var inv secp256k1.FieldVal
	inv.Set(&prefix[n-1]).Inverse()
	for i := n - 1; i >= 0; i-- {
		var zinv secp256k1.FieldVal
		if i > 0 {
			zinv.Mul2(&inv, &prefix[i-1])
			inv.Mul(&z[i])
		} else {
			zinv.Set(&inv)
		}
		var zero secp256k1.FieldVal
		m := -isID[i]
		out[i].X.Mul2(&ps[i].x, &zinv).Normalize()
		out[i].Y.Mul2(&ps[i].y, &zinv).Normalize()
		cmov(&out[i].X, &zero, m)
		cmov(&out[i].Y, &zero, m)
		out[i].Z.SetInt(uint16(1 ^ isID[i]))
	}
	clear(z)
	clear(prefix)
}

// ScalarMultAll sets out[i] = k·ps[i] for every i (len(out) ≥ len(ps)), in
// constant time in k.
func ScalarMultAll(k *secp256k1.ModNScalar, ps, out []secp256k1.JacobianPoint) {
	qs := make([]point, len(ps))
	for i := range ps {
		scalarMultProj(k, &ps[i], &qs[i])
	}
	batchToJacobian(qs, out)
	clear(qs)
}

// ScalarBaseMultAll sets out[i] = ks[i]·G for every i, in constant time.
func ScalarBaseMultAll(ks []secp256k1.ModNScalar, out []secp256k1.JacobianPoint) {
	baseTableOnce.Do(initBaseTable)
	qs := make([]point, len(ks))
	for i := range ks {
		baseTable.multProj(&ks[i], &qs[i])
	}
	batchToJacobian(qs, out)
	clear(qs)
}

// MultAll sets out[i] = ks[i]·P for every i, in constant time.
func (t *Table) MultAll(ks []secp256k1.ModNScalar, out []secp256k1.JacobianPoint) {
	qs := make([]point, len(ks))
	for i := range ks {
		t.t.multProj(&ks[i], &qs[i])
	}
	batchToJacobian(qs, out)
	clear(qs)
}

// AddAll sets out[i] = ps[i] + q for every i, with complete formulas, in
// constant time.
func AddAll(ps []secp256k1.JacobianPoint, q *secp256k1.JacobianPoint, out []secp256k1.JacobianPoint) {
	var b point
	fromJacobian(q, &b)
	qs := make([]point, len(ps))
	for i := range ps {
		fromJacobian(&ps[i], &qs[i])
		add(&qs[i], &qs[i], &b)
	}
	batchToJacobian(qs, out)
	clear(qs)
}
