package curve

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func testRand(t testing.TB) *mrand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], t.Name())
	return mrand.NewChaCha8(seed)
}

func scalarFromHex(t testing.TB, h string) *secp256k1.ModNScalar {
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var s secp256k1.ModNScalar
	if s.SetByteSlice(b) {
		t.Fatalf("scalar %s overflows", h)
	}
	return &s
}

// edgeScalars are 0, 1, 2, 15, 16, n-1, n-2, (n-1)/2 and a few with every
// window zero or full.
func edgeScalars(t testing.TB) []*secp256k1.ModNScalar {
	var out []*secp256k1.ModNScalar
	for _, h := range []string{
		"00", "01", "02", "0f", "10", "11", "ff", "0100",
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", // n-1
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd036413f", // n-2
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", // (n-1)/2
		"8000000000000000000000000000000000000000000000000000000000000000",
		"f000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000100000000000000000000000000000000",
		"ffffffffffffffffffffffffffffffff",
	} {
		out = append(out, scalarFromHex(t, h))
	}
	return out
}

func randScalar(t testing.TB, r *mrand.ChaCha8) *secp256k1.ModNScalar {
	s, err := RandomScalar(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameAsDecred checks got (our output) against want (decred's), including
// our normal form: affine with Z = 1, or all zero for the identity.
func sameAsDecred(t *testing.T, what string, got, want *secp256k1.JacobianPoint) {
	t.Helper()
	got.X.Normalize()
	got.Y.Normalize()
	got.Z.Normalize()
	if IsIdentity(want) {
		if !got.X.IsZero() || !got.Y.IsZero() || !got.Z.IsZero() {
			t.Fatalf("%s: want identity as all zero, got a point", what)
		}
		return
	}
	if !got.Z.IsOne() {
		t.Fatalf("%s: result not affine", what)
	}
	w := *want
	w.ToAffine()
	if !got.X.Equals(&w.X) || !got.Y.Equals(&w.Y) {
		t.Fatalf("%s: differs from decred", what)
	}
}

func TestFieldValLayout(t *testing.T) {
	if !fieldValLayoutOK() {
		t.Fatal("decred FieldVal layout changed")
	}
	var a, b secp256k1.FieldVal
	a.SetByteSlice(bytes.Repeat([]byte{0xab}, 32))
	b.SetInt(7)
	cmov(&b, &a, 0)
	if !b.Equals(new(secp256k1.FieldVal).SetInt(7)) {
		t.Fatal("cmov with zero mask changed dst")
	}
	cmov(&b, &a, 0xffffffff)
	if !b.Equals(&a) {
		t.Fatal("cmov with full mask did not copy")
	}
}

func TestScalarBaseMultMatchesDecred(t *testing.T) {
	r := testRand(t)
	ks := edgeScalars(t)
	for range 200 {
		ks = append(ks, randScalar(t, r))
	}
	for i, k := range ks {
		var got, want secp256k1.JacobianPoint
		ScalarBaseMult(k, &got)
		secp256k1.ScalarBaseMultNonConst(k, &want)
		sameAsDecred(t, "ScalarBaseMult #"+string(rune('0'+i%10)), &got, &want)
	}
}

func TestScalarMultMatchesDecred(t *testing.T) {
	r := testRand(t)
	var points []secp256k1.JacobianPoint
	for range 20 {
		var p secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &p)
		points = append(points, p) // Jacobian, Z != 1 in general
	}
	var g secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(new(secp256k1.ModNScalar).SetInt(1), &g)
	points = append(points, g)
	for _, p := range points {
		ks := edgeScalars(t)
		for range 10 {
			ks = append(ks, randScalar(t, r))
		}
		for _, k := range ks {
			var got, want secp256k1.JacobianPoint
			ScalarMult(k, &p, &got)
			secp256k1.ScalarMultNonConst(k, &p, &want)
			sameAsDecred(t, "ScalarMult", &got, &want)
		}
	}
}

func TestScalarMultIdentityInput(t *testing.T) {
	r := testRand(t)
	for _, id := range []secp256k1.JacobianPoint{{}, func() secp256k1.JacobianPoint {
		var p secp256k1.JacobianPoint
		p.X.SetInt(1)
		p.Y.SetInt(1) // Z = 0: identity whatever X, Y say
		return p
	}()} {
		var got secp256k1.JacobianPoint
		got.X.SetInt(9)
		ScalarMult(randScalar(t, r), &id, &got)
		if !got.X.IsZero() || !got.Y.IsZero() || !got.Z.IsZero() {
			t.Fatal("k·identity is not the all-zero identity")
		}
	}
}

// TestCompleteFormulasEdgeCases drives the addition law through P + P,
// P + (-P) and identity + P, which incomplete formulas get wrong.
func TestCompleteFormulasEdgeCases(t *testing.T) {
	r := testRand(t)
	k := randScalar(t, r)
	var pj secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(k, &pj)
	pj.ToAffine()
	var p, np, id, s point
	p.x, p.y = pj.X, pj.Y
	p.z.SetInt(1)
	np = p
	np.y.Negate(1).Normalize()
	id.setIdentity()

	check := func(what string, got *point, wantK *secp256k1.ModNScalar) {
		t.Helper()
		var g, w secp256k1.JacobianPoint
		toJacobian(got, &g)
		secp256k1.ScalarBaseMultNonConst(wantK, &w)
		sameAsDecred(t, what, &g, &w)
	}
	var twoK, zero secp256k1.ModNScalar
	twoK.Add2(k, k)
	add(&s, &p, &p)
	check("P+P", &s, &twoK)
	double(&s, &p)
	check("2P", &s, &twoK)
	add(&s, &p, &np)
	check("P+(-P)", &s, &zero)
	add(&s, &id, &p)
	check("O+P", &s, k)
	add(&s, &p, &id)
	check("P+O", &s, k)
	double(&s, &id)
	check("2O", &s, &zero)
	add(&s, &id, &id)
	check("O+O", &s, &zero)
	pa := affine{x: p.x, y: p.y}
	addMixed(&s, &id, &pa)
	check("O+P mixed", &s, k)
	addMixed(&s, &p, &pa)
	check("P+P mixed", &s, &twoK)
	addMixed(&s, &np, &pa)
	check("-P+P mixed", &s, &zero)
}

func TestPointEncoding(t *testing.T) {
	r := testRand(t)
	for range 50 {
		var p secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &p)
		enc := EncodePoint(&p)
		pub, err := secp256k1.ParsePubKey(enc)
		if err != nil {
			t.Fatalf("decred rejects our encoding: %v", err)
		}
		var want secp256k1.JacobianPoint
		pub.AsJacobian(&want)
		q, err := DecodePoint(enc)
		if err != nil {
			t.Fatal(err)
		}
		sameAsDecred(t, "decode", q, &want)
		if !bytes.Equal(EncodePoint(q), pub.SerializeCompressed()) {
			t.Fatal("re-encoding differs from decred's")
		}
	}
}

func TestDecodePointRejects(t *testing.T) {
	gx, _ := hex.DecodeString("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	if _, err := DecodePoint(gx); err != nil {
		t.Fatalf("G rejected: %v", err)
	}
	pBytes, _ := hex.DecodeString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f")
	// x = 5 is not on the curve (5³+7 = 132 is not a square mod p)... find
	// one that is not, deterministically.
	notOnCurve := func() []byte {
		for x := uint16(1); ; x++ {
			var fx, y secp256k1.FieldVal
			fx.SetInt(x)
			if !secp256k1.DecompressY(&fx, false, &y) {
				b := make([]byte, 33)
				b[0] = 2
				fx.PutBytesUnchecked(b[1:])
				return b
			}
		}
	}()
	cases := map[string][]byte{
		"empty":        nil,
		"identity 00":  {0x00},
		"33 zeros":     make([]byte, 33),
		"uncompressed": append([]byte{0x04}, make([]byte, 64)...),
		"prefix 04":    append([]byte{0x04}, gx[1:]...),
		"prefix 01":    append([]byte{0x01}, gx[1:]...),
		"short":        gx[:32],
		"trailing":     append(append([]byte{}, gx...), 0),
		"x = p":        append([]byte{0x02}, pBytes...),
		"x = p + 1": func() []byte {
			b := append([]byte{0x02}, pBytes...)
			b[32]++
			return b
		}(),
		"x = 0":        append([]byte{0x02}, make([]byte, 32)...),
		"not on curve": notOnCurve,
	}
	for name, b := range cases {
		if _, err := DecodePoint(b); !errors.Is(err, ErrInvalidPoint) {
			t.Errorf("%s: got %v, want ErrInvalidPoint", name, err)
		}
	}
}

func TestScalarEncoding(t *testing.T) {
	r := testRand(t)
	for range 50 {
		s := randScalar(t, r)
		d, err := DecodeNonZeroScalar(EncodeScalar(s))
		if err != nil || !d.Equals(s) {
			t.Fatal("scalar round trip failed")
		}
	}
	n, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	nm1, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140")
	if _, err := DecodeScalar(nm1); err != nil {
		t.Fatal("n-1 rejected")
	}
	for name, b := range map[string][]byte{
		"n":        n,
		"all ones": bytes.Repeat([]byte{0xff}, 32),
		"short":    nm1[:31],
		"long":     append(append([]byte{}, nm1...), 0),
		"empty":    nil,
	} {
		if _, err := DecodeScalar(b); !errors.Is(err, ErrInvalidScalar) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if s, err := DecodeScalar(make([]byte, 32)); err != nil || !s.IsZero() {
		t.Fatal("DecodeScalar rejects zero")
	}
	if _, err := DecodeNonZeroScalar(make([]byte, 32)); !errors.Is(err, ErrInvalidScalar) {
		t.Fatal("DecodeNonZeroScalar accepts zero")
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestRandomScalar(t *testing.T) {
	s, err := RandomScalar(rand.Reader)
	if err != nil || s.IsZero() {
		t.Fatal("RandomScalar failed")
	}
	if _, err := RandomScalar(zeroReader{}); err == nil {
		t.Fatal("RandomScalar accepted an all-zero source")
	}
	ff := bytes.NewReader(append(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{1}, 32)...))
	s, err = RandomScalar(ff)
	if err != nil {
		t.Fatal(err)
	}
	want := scalarFromHex(t, hex.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	if !s.Equals(want) {
		t.Fatal("RandomScalar did not reject a draw >= n")
	}
}

func FuzzDecodePoint(f *testing.F) {
	gx, _ := hex.DecodeString("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	f.Add(gx)
	f.Add(make([]byte, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodePoint(p), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
		if _, err := secp256k1.ParsePubKey(b); err != nil {
			t.Fatal("accepted a point decred rejects")
		}
	})
}

func FuzzDecodeScalar(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeScalar(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeScalar(s), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

func BenchmarkScalarBaseMult(b *testing.B) {
	k := randScalar(b, testRand(b))
	var r secp256k1.JacobianPoint
	for b.Loop() {
		ScalarBaseMult(k, &r)
	}
}

func BenchmarkScalarMult(b *testing.B) {
	rr := testRand(b)
	k := randScalar(b, rr)
	var p, r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(randScalar(b, rr), &p)
	for b.Loop() {
		ScalarMult(k, &p, &r)
	}
}

func BenchmarkDecredScalarMultNonConst(b *testing.B) {
	rr := testRand(b)
	k := randScalar(b, rr)
	var p, r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(randScalar(b, rr), &p)
	for b.Loop() {
		secp256k1.ScalarMultNonConst(k, &p, &r)
	}
}

func TestAddAndSelect(t *testing.T) {
	r := testRand(t)
	var pts []secp256k1.JacobianPoint
	for range 5 {
		var p secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &p)
		pts = append(pts, p)
	}
	var neg secp256k1.JacobianPoint
	neg.Set(&pts[0])
	neg.Y.Normalize().Negate(1).Normalize()
	pts = append(pts, neg, secp256k1.JacobianPoint{})
	for i := range pts {
		for j := range pts {
			var got, want secp256k1.JacobianPoint
			Add(&pts[i], &pts[j], &got)
			secp256k1.AddNonConst(&pts[i], &pts[j], &want)
			sameAsDecred(t, "Add", &got, &want)
		}
	}
	var s secp256k1.JacobianPoint
	Select(&s, &pts[0], &pts[1], 0)
	if !s.EquivalentNonConst(&pts[0]) || s.EquivalentNonConst(&pts[1]) {
		t.Fatal("Select 0 did not pick a")
	}
	Select(&s, &pts[0], &pts[1], 1)
	if !s.EquivalentNonConst(&pts[1]) || s.EquivalentNonConst(&pts[0]) {
		t.Fatal("Select 1 did not pick b")
	}
}

func TestTableMatchesDecred(t *testing.T) {
	r := testRand(t)
	for range 3 {
		var p secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &p) // Z != 1
		tab, err := NewTable(&p)
		if err != nil {
			t.Fatal(err)
		}
		ks := edgeScalars(t)
		for range 20 {
			ks = append(ks, randScalar(t, r))
		}
		for _, k := range ks {
			var got, want secp256k1.JacobianPoint
			tab.Mult(k, &got)
			secp256k1.ScalarMultNonConst(k, &p, &want)
			sameAsDecred(t, "Table.Mult", &got, &want)
		}
	}
	if _, err := NewTable(&secp256k1.JacobianPoint{}); err == nil {
		t.Fatal("NewTable of the identity succeeded")
	}
}

func BenchmarkTableMult(b *testing.B) {
	rr := testRand(b)
	var p, r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(randScalar(b, rr), &p)
	tab, _ := NewTable(&p)
	k := randScalar(b, rr)
	for b.Loop() {
		tab.Mult(k, &r)
	}
}

func BenchmarkNewTable(b *testing.B) {
	rr := testRand(b)
	var p secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(randScalar(b, rr), &p)
	for b.Loop() {
		if _, err := NewTable(&p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBatchForms checks the batch multiplications and additions against
// the single forms, with identity results (zero scalars, P + (-P), identity
// inputs) mixed in.
func TestBatchForms(t *testing.T) {
	r := testRand(t)
	const n = 9
	ks := make([]secp256k1.ModNScalar, n)
	ps := make([]secp256k1.JacobianPoint, n)
	for i := range ks {
		ks[i] = *randScalar(t, r)
		secp256k1.ScalarBaseMultNonConst(randScalar(t, r), &ps[i])
	}
	ks[3].Zero()                      // 0·P
	ps[5] = secp256k1.JacobianPoint{} // k·O
	k := randScalar(t, r)

	same := func(what string, got, want *secp256k1.JacobianPoint) {
		t.Helper()
		sameAsDecred(t, what, got, want)
	}
	out := make([]secp256k1.JacobianPoint, n)
	ScalarMultAll(k, ps, out)
	for i := range ps {
		var want secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(k, &ps[i], &want)
		same("ScalarMultAll", &out[i], &want)
	}
	ScalarBaseMultAll(ks, out)
	for i := range ks {
		var want secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(&ks[i], &want)
		same("ScalarBaseMultAll", &out[i], &want)
	}
	tab, err := NewTable(&ps[0])
	if err != nil {
		t.Fatal(err)
	}
	tab.MultAll(ks, out)
	for i := range ks {
		var want secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(&ks[i], &ps[0], &want)
		same("Table.MultAll", &out[i], &want)
	}
	q := ps[1]
	var negQ secp256k1.JacobianPoint
	negQ.Set(&q)
	negQ.Y.Normalize().Negate(1).Normalize()
	ps[2] = negQ // ps[2] + q = O
	AddAll(ps, &q, out)
	for i := range ps {
		var want secp256k1.JacobianPoint
		secp256k1.AddNonConst(&ps[i], &q, &want)
		same("AddAll", &out[i], &want)
	}
}
