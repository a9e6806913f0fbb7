package curve

import (
	"crypto/subtle"
	"errors"
	"sync"
	"unsafe"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// b3 is 3·b for secp256k1 (y² = x³ + 7), as the RCB formulas use it.
const b3 = 21

// point is a point in homogeneous projective coordinates (X:Y:Z), x = X/Z,
// y = Y/Z. The identity is (0:1:0). Coordinates have magnitude at most 3
// (decred's FieldVal bookkeeping); every formula below states how it keeps
// that invariant.
type point struct {
	x, y, z secp256k1.FieldVal
}

// affine is a non-identity point with x, y normalised (magnitude 1).
type affine struct {
	x, y secp256k1.FieldVal
}

func (p *point) setIdentity() {
	p.x.Zero()
	p.y.SetInt(1)
	p.z.Zero()
}

// sub sets r = a - b, where b has magnitude at most mb. The result has
// magnitude mag(a) + mb + 1.
func sub(r, a, b *secp256k1.FieldVal, mb uint32) {
	var nb secp256k1.FieldVal
	nb.NegateVal(b, mb)
	r.Add2(a, &nb)
}

// add sets r = p + q: Renes–Costello–Batina 2016, Algorithm 7 (complete
// addition, a = 0). Inputs have magnitude ≤ 3; magnitudes are in comments.
// r may alias p or q.
func add(r, p, q *point) {
	var t0, t1, t2, t3, t4, x3, y3, z3 secp256k1.FieldVal
	t0.Mul2(&p.x, &q.x) // 1
	t1.Mul2(&p.y, &q.y) // 1
	t2.Mul2(&p.z, &q.z) // 1
	t3.Add2(&p.x, &p.y) // 6
	t4.Add2(&q.x, &q.y) // 6
	t3.Mul(&t4)         // 1
	t4.Add2(&t0, &t1)   // 2
	sub(&t3, &t3, &t4, 2)
	t4.Add2(&p.y, &p.z) // 6
	x3.Add2(&q.y, &q.z) // 6
	t4.Mul(&x3)         // 1
	x3.Add2(&t1, &t2)   // 2
	sub(&t4, &t4, &x3, 2)
	x3.Add2(&p.x, &p.z) // 6
	y3.Add2(&q.x, &q.z) // 6
	x3.Mul(&y3)         // 1
	y3.Add2(&t0, &t2)   // 2
	sub(&y3, &x3, &y3, 2)
	x3.Add2(&t0, &t0)             // 2
	t0.Add(&x3)                   // 3
	t2.MulInt(b3)                 // 21
	z3.Add2(&t1, &t2).Normalize() // 1
	sub(&t1, &t1, &t2, 21)        // 23
	t1.Normalize()                // 1
	y3.Normalize().MulInt(b3)     // 21
	y3.Normalize()                // 1
	x3.Mul2(&t4, &y3)             // 1
	t2.Mul2(&t3, &t1)             // 1
	sub(&x3, &t2, &x3, 1)         // 3
	y3.Mul(&t0)                   // 1
	t1.Mul(&z3)                   // 1
	y3.Add(&t1)                   // 2
	t0.Mul(&t3)                   // 1
	z3.Mul(&t4)                   // 1
	z3.Add(&t0)                   // 2
	r.x, r.y, r.z = x3, y3, z3
}

// addMixed sets r = p + q for an affine q: Renes–Costello–Batina 2016,
// Algorithm 8 (a = 0). p may be the identity; q may not (a caller that
// looked up an "identity" entry discards the result). r may alias p.
func addMixed(r, p *point, q *affine) {
	var t0, t1, t2, t3, t4, x3, y3, z3 secp256k1.FieldVal
	t0.Mul2(&p.x, &q.x) // 1
	t1.Mul2(&p.y, &q.y) // 1
	t3.Add2(&q.x, &q.y) // 2
	t4.Add2(&p.x, &p.y) // 6
	t3.Mul(&t4)         // 1
	t4.Add2(&t0, &t1)   // 2
	sub(&t3, &t3, &t4, 2)
	t4.Mul2(&q.y, &p.z) // 1
	t4.Add(&p.y)        // 4
	y3.Mul2(&q.x, &p.z) // 1
	y3.Add(&p.x)        // 4
	x3.Add2(&t0, &t0)   // 2
	t0.Add(&x3)         // 3
	t2.Set(&p.z).Normalize().MulInt(b3)
	z3.Add2(&t1, &t2).Normalize() // 1
	sub(&t1, &t1, &t2, 21)        // 23
	t1.Normalize()                // 1
	y3.Normalize().MulInt(b3)     // 21
	y3.Normalize()                // 1
	x3.Mul2(&t4, &y3)             // 1
	t2.Mul2(&t3, &t1)             // 1
	sub(&x3, &t2, &x3, 1)         // 3
	y3.Mul(&t0)                   // 1
	t1.Mul(&z3)                   // 1
	y3.Add(&t1)                   // 2
	t0.Mul(&t3)                   // 1
	z3.Mul(&t4)                   // 1
	z3.Add(&t0)                   // 2
	r.x, r.y, r.z = x3, y3, z3
}

// double sets r = 2p: Renes–Costello–Batina 2016, Algorithm 9 (a = 0).
// r may alias p.
func double(r, p *point) {
	var t0, t1, t2, x3, y3, z3 secp256k1.FieldVal
	t0.SquareVal(&p.y)            // 1
	z3.Add2(&t0, &t0)             // 2
	z3.Add(&z3)                   // 4
	z3.Add(&z3)                   // 8
	t1.Mul2(&p.y, &p.z)           // 1
	t2.SquareVal(&p.z).MulInt(b3) // 21
	t2.Normalize()                // 1
	x3.Mul2(&t2, &z3)             // 1
	y3.Add2(&t0, &t2)             // 2
	z3.Mul(&t1)                   // 1
	t1.Add2(&t2, &t2)             // 2
	t2.Add(&t1)                   // 3
	sub(&t0, &t0, &t2, 3)         // 5
	y3.Mul(&t0)                   // 1
	y3.Add(&x3)                   // 2
	t1.Mul2(&p.x, &p.y)           // 1
	x3.Mul2(&t0, &t1)             // 1
	x3.Add(&x3)                   // 2
	r.x, r.y, r.z = x3, y3, z3
}

// limbs exposes the ten 26-bit limbs of a decred FieldVal so that table
// lookups can use masks instead of arithmetic. decred's FieldVal is
// `struct{ n [10]uint32 }` (v4.4.1, pinned in go.mod): the two array
// declarations below fail to compile unless its size is 40 bytes, and
// TestFieldValLayout checks the limb order.
func limbs(f *secp256k1.FieldVal) *[10]uint32 {
	return (*[10]uint32)(unsafe.Pointer(f))
}

var (
	_ [unsafe.Sizeof(secp256k1.FieldVal{}) - 40]byte
	_ [40 - unsafe.Sizeof(secp256k1.FieldVal{})]byte
)

// fieldValLayoutOK reports whether limbs sees a small value in limb 0.
func fieldValLayoutOK() bool {
	var f secp256k1.FieldVal
	f.SetInt(5)
	l := limbs(&f)
	return l[0] == 5 && l[1] == 0 && l[9] == 0
}

// cmov sets dst = src if mask is all ones, leaves dst if mask is zero.
func cmov(dst, src *secp256k1.FieldVal, mask uint32) {
	d, s := limbs(dst), limbs(src)
	for i := range d {
		d[i] ^= mask & (d[i] ^ s[i])
	}
}

// lookup sets r = t[idx] touching every entry, in constant time.
func lookup(r *point, t *[16]point, idx uint32) {
	r.x.Zero()
	r.y.Zero()
	r.z.Zero()
	for i := range t {
		m := uint32(0) - uint32(subtle.ConstantTimeEq(int32(i), int32(idx)))
		cmov(&r.x, &t[i].x, m)
		cmov(&r.y, &t[i].y, m)
		cmov(&r.z, &t[i].z, m)
	}
}

// lookupAffine sets r = t[idx-1] for idx in 1..15 and r = (0, 0) for idx 0,
// touching every entry, in constant time.
func lookupAffine(r *affine, t *[15]affine, idx uint32) {
	r.x.Zero()
	r.y.Zero()
	for i := range t {
		m := uint32(0) - uint32(subtle.ConstantTimeEq(int32(i+1), int32(idx)))
		cmov(&r.x, &t[i].x, m)
		cmov(&r.y, &t[i].y, m)
	}
}

// toJacobian writes p to r in affine form (Z = 1), or all zero for the
// identity, in constant time.
func toJacobian(p *point, r *secp256k1.JacobianPoint) {
	var zinv secp256k1.FieldVal
	zinv.Set(&p.z).Normalize()
	isID := zinv.IsZeroBit()
	zinv.Inverse() // 0⁻¹ = 0 (Fermat), so the identity gives x = y = 0
	r.X.Mul2(&p.x, &zinv).Normalize()
	r.Y.Mul2(&p.y, &zinv).Normalize()
	r.Z.SetInt(uint16(1 ^ isID))
}

// ScalarMult sets result to k·p in constant time (in k). p is public and may
// be in any Jacobian form, including the identity (Z = 0). The result is
// affine (Z = 1), or all zero for the identity.
//
// Method: see scalarMultProj (GLV split, two 16-entry tables, complete
// additions).
func ScalarMult(k *secp256k1.ModNScalar, p, result *secp256k1.JacobianPoint) {
	var q point
	scalarMultProj(k, p, &q)
	toJacobian(&q, result)
}

// scalarMultProj sets q = k·p in projective coordinates (see ScalarMult).
//
// Method: the GLV split k ≡ ±k1 ± k2·λ with 128-bit halves (glvSplit);
// tables of 0·P … 15·P and of their images under φ(x, y) = (β·x, y), each
// negated in constant time when its half is negative; then for each 4-bit
// window of the halves, from the top, four doublings and two complete
// additions of looked-up entries — 124 doublings instead of 252.
func scalarMultProj(k *secp256k1.ModNScalar, p *secp256k1.JacobianPoint, q *point) {
	var a secp256k1.JacobianPoint
	a.Set(p)
	if IsIdentity(&a) { // p is public
		q.setIdentity()
		return
	}
	a.ToAffine()
	var tab, tabPhi [16]point
	tab[0].setIdentity()
	tab[1].x.Set(&a.X)
	tab[1].y.Set(&a.Y)
	tab[1].z.SetInt(1)
	for i := 2; i < 16; i++ {
		if i%2 == 0 {
			double(&tab[i], &tab[i/2])
		} else {
			add(&tab[i], &tab[i-1], &tab[1])
		}
	}
	k1, k2, neg1, neg2 := glvSplit(k)
	m1, m2 := uint32(0)-neg1, uint32(0)-neg2
	for i := range tab {
		var ny secp256k1.FieldVal
		ny.NegateVal(&tab[i].y, 3).Normalize()
		tabPhi[i].x.Mul2(&tab[i].x, &glvBeta)
		tabPhi[i].y.Set(&tab[i].y)
		tabPhi[i].z.Set(&tab[i].z)
		cmov(&tabPhi[i].y, &ny, m2)
		cmov(&tab[i].y, &ny, m1)
	}
	b1, b2 := k1.Bytes(), k2.Bytes() // top 16 bytes are zero
	k1.Zero()
	k2.Zero()
	var e point
	q.setIdentity()
	for i := range 32 {
		if i > 0 {
			double(q, q)
			double(q, q)
			double(q, q)
			double(q, q)
		}
		byteIdx := 16 + i/2
		shift := uint(4 * (1 - i%2))
		lookup(&e, &tab, uint32(b1[byteIdx]>>shift)&0xf)
		add(q, q, &e)
		lookup(&e, &tabPhi, uint32(b2[byteIdx]>>shift)&0xf)
		add(q, q, &e)
	}
	clear(b1[:])
	clear(b2[:])
}

// windowTable[w][i-1] = i·16^w·P, affine, for w in 0..63 and i in 1..15.
type windowTable [64][15]affine

// newWindowTable computes the table of a public point p (not the identity)
// in variable time: decred's Jacobian additions, then one batched inversion
// (Montgomery's trick) to make every entry affine.
func newWindowTable(p *secp256k1.JacobianPoint) *windowTable {
	const n = 64 * 15
	jac := make([]secp256k1.JacobianPoint, n)
	var step secp256k1.JacobianPoint // 16^w·P
	step.Set(p)
	for w := range 64 {
		for i := range 15 {
			k := w*15 + i
			if i == 0 {
				jac[k].Set(&step)
			} else {
				secp256k1.AddNonConst(&jac[k-1], &step, &jac[k])
			}
		}
		for range 4 {
			secp256k1.DoubleNonConst(&step, &step)
		}
	}
	// prefix[k] = Z_0·…·Z_k; none is zero, since i·16^w < n and P is not
	// the identity.
	prefix := make([]secp256k1.FieldVal, n)
	for k := range jac {
		jac[k].Z.Normalize()
		if k == 0 {
			prefix[0].Set(&jac[0].Z)
		} else {
			prefix[k].Mul2(&prefix[k-1], &jac[k].Z)
		}
	}
	var inv secp256k1.FieldVal // (Z_0·…·Z_k)⁻¹, walking down
	inv.Set(&prefix[n-1]).Inverse()
	t := new(windowTable)
	for k := n - 1; k >= 0; k-- {
		var zinv, zinv2 secp256k1.FieldVal
		if k > 0 {
			zinv.Mul2(&inv, &prefix[k-1]) // Z_k⁻¹
			inv.Mul(&jac[k].Z)
		} else {
			zinv.Set(&inv)
		}
		zinv2.SquareVal(&zinv)
		e := &t[k/15][k%15]
		e.x.Mul2(&jac[k].X, &zinv2).Normalize()
		e.y.Mul2(&jac[k].Y, zinv2.Mul(&zinv)).Normalize()
	}
	return t
}

// mult sets result = k·P for the table of P, in constant time in k: 64
// mixed additions, one per 4-bit window of k, and no doubling. A zero window
// adds a dummy entry whose result is discarded by a constant-time select.
func (t *windowTable) mult(k *secp256k1.ModNScalar, result *secp256k1.JacobianPoint) {
	var q point
	t.multProj(k, &q)
	toJacobian(&q, result)
}

// multProj is mult with a projective result.
func (t *windowTable) multProj(k *secp256k1.ModNScalar, q *point) {
	kb := k.Bytes()
	var r point
	var e affine
	q.setIdentity()
	for w := range 64 {
		b := kb[31-w/2]
		nib := uint32(b) & 0xf
		if w%2 == 1 {
			nib = uint32(b>>4) & 0xf
		}
		lookupAffine(&e, &t[w], nib)
		addMixed(&r, q, &e)
		m := uint32(0) - uint32(1^subtle.ConstantTimeEq(int32(nib), 0))
		cmov(&q.x, &r.x, m)
		cmov(&q.y, &r.y, m)
		cmov(&q.z, &r.z, m)
	}
	clear(kb[:])
}

var (
	baseTableOnce sync.Once
	baseTable     *windowTable
)

// ScalarBaseMult sets result to k·G in constant time (in k). The result is
// affine (Z = 1), or all zero when k is zero.
//
// Method: k = Σ k_w·16^w with 4-bit windows; a table computed once holds
// i·16^w·G for every window, so the product is 64 mixed additions.
func ScalarBaseMult(k *secp256k1.ModNScalar, result *secp256k1.JacobianPoint) {
	baseTableOnce.Do(initBaseTable)
	baseTable.mult(k, result)
}

func initBaseTable() {
	var g secp256k1.JacobianPoint
	var one secp256k1.ModNScalar
	one.SetInt(1)
	secp256k1.ScalarBaseMultNonConst(&one, &g)
	baseTable = newWindowTable(&g)
}

// Table holds the multiples of one public point that make repeated
// constant-time multiplications of that point about three times cheaper
// than ScalarMult. Building it costs about six ScalarMults; it pays off
// from about ten multiplications (the base-OT receiver makes 128).
type Table struct {
	t *windowTable
}

// NewTable precomputes the table of a public point p, which must not be the
// identity.
func NewTable(p *secp256k1.JacobianPoint) (*Table, error) {
	if IsIdentity(p) {
		return nil, errors.New("curve: NewTable of the identity")
	}
	var a secp256k1.JacobianPoint
	a.Set(p)
	a.ToAffine()
	return &Table{t: newWindowTable(&a)}, nil
}

// Mult sets result = k·P in constant time (in k). The result is affine
// (Z = 1), or all zero when k is zero.
func (t *Table) Mult(k *secp256k1.ModNScalar, result *secp256k1.JacobianPoint) {
	t.t.mult(k, result)
}

// fromJacobian converts a Jacobian point (X, Y, Z) to homogeneous projective
// (X·Z : Y : Z³), in constant time. Both identity forms (Z = 0, or all zero)
// become (0 : 1 : 0).
func fromJacobian(p *secp256k1.JacobianPoint, r *point) {
	var z secp256k1.FieldVal
	z.Set(&p.Z).Normalize()
	isID := z.IsZeroBit()
	var x, y secp256k1.FieldVal
	x.Set(&p.X).Normalize()
	y.Set(&p.Y).Normalize()
	r.x.Mul2(&x, &z)
	r.y.Set(&y)
	r.z.SquareVal(&z).Mul(&z)
	var one secp256k1.FieldVal
	one.SetInt(1)
	m := uint32(0) - isID
	cmov(&r.y, &one, m)
	r.x.Normalize()
	r.y.Normalize()
	r.z.Normalize()
	var zero secp256k1.FieldVal
	cmov(&r.x, &zero, m)
}

// Add sets result = p + q in constant time with complete formulas (RCB 2016,
// Algorithm 7): no branch on whether p or q is the identity, equal or
// opposite. Inputs may be in any Jacobian form; the result is affine (Z = 1),
// or all zero for the identity.
func Add(p, q, result *secp256k1.JacobianPoint) {
	var a, b point
	fromJacobian(p, &a)
	fromJacobian(q, &b)
	add(&a, &a, &b)
	toJacobian(&a, result)
}

// Select sets result = a if bit == 0 and result = b if bit == 1, in constant
// time. bit must be 0 or 1.
func Select(result, a, b *secp256k1.JacobianPoint, bit uint32) {
	m := uint32(0) - (bit & 1)
	var r secp256k1.JacobianPoint
	r.Set(a)
	cmov(&r.X, &b.X, m)
	cmov(&r.Y, &b.Y, m)
	cmov(&r.Z, &b.Z, m)
	result.Set(&r)
}
