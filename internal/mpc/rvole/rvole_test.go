package rvole

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
)

func testRand(t testing.TB) *mrand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], t.Name())
	return mrand.NewChaCha8(seed)
}

func setupPair(t testing.TB, r *mrand.ChaCha8) (*AliceSetup, *BobSetup) {
	t.Helper()
	st, m1, err := SetupBob([]byte("pair 1→2"), r)
	if err != nil {
		t.Fatal(err)
	}
	as, m2, err := SetupAlice([]byte("pair 1→2"), m1, r)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := st.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	return as, bs
}

func randScalars(t testing.TB, r *mrand.ChaCha8, n int) []secp256k1.ModNScalar {
	out := make([]secp256k1.ModNScalar, n)
	for i := range out {
		s, err := curve.RandomScalar(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = *s
	}
	return out
}

// checkProduct asserts c[k] + d[k] = a[k]·β.
func checkProduct(t *testing.T, a, c, d []secp256k1.ModNScalar, beta *secp256k1.ModNScalar) {
	t.Helper()
	if len(c) != len(a) || len(d) != len(a) {
		t.Fatalf("lengths c %d d %d, want %d", len(c), len(d), len(a))
	}
	for k := range a {
		var sum, prod secp256k1.ModNScalar
		sum.Add2(&c[k], &d[k])
		prod.Mul2(&a[k], beta)
		if !sum.Equals(&prod) {
			t.Fatalf("c[%d] + d[%d] != a[%d]·β", k, k, k)
		}
	}
}

type run struct {
	bm         *BobMul
	msg1, msg2 []byte
	a, c       []secp256k1.ModNScalar
	beta       *secp256k1.ModNScalar
}

func multiply(t *testing.T, r *mrand.ChaCha8, as *AliceSetup, bs *BobSetup, sid string, ell int) *run {
	t.Helper()
	beta := &randScalars(t, r, 1)[0]
	a := randScalars(t, r, ell)
	bm, m1, err := bs.Start([]byte(sid), beta, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(m1) != Msg1Len() {
		t.Fatalf("msg1 length %d, want %d", len(m1), Msg1Len())
	}
	c, m2, err := as.Multiply([]byte(sid), a, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(m2) != Msg2Len(ell) {
		t.Fatalf("msg2 length %d, want %d", len(m2), Msg2Len(ell))
	}
	return &run{bm: bm, msg1: m1, msg2: m2, a: a, c: c, beta: beta}
}

func TestMultiplyCorrect(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	for i, ell := range []int{1, 2, 2, 3, 8} {
		x := multiply(t, r, as, bs, "session "+string(rune('a'+i)), ell)
		d, err := x.bm.Finish(x.msg2)
		if err != nil {
			t.Fatal(err)
		}
		checkProduct(t, x.a, x.c, d, x.beta)
	}
}

func TestMultiplyEdgeInputs(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	var zero, one secp256k1.ModNScalar
	one.SetInt(1)
	for i, beta := range []*secp256k1.ModNScalar{&zero, &one} {
		a := []secp256k1.ModNScalar{zero, one}
		sid := []byte{byte(i)}
		bm, m1, err := bs.Start(sid, beta, r)
		if err != nil {
			t.Fatal(err)
		}
		c, m2, err := as.Multiply(sid, a, m1, r)
		if err != nil {
			t.Fatal(err)
		}
		d, err := bm.Finish(m2)
		if err != nil {
			t.Fatal(err)
		}
		checkProduct(t, a, c, d, beta)
	}
}

func TestOneShot(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	x := multiply(t, r, as, bs, "sid", 2)
	if _, err := x.bm.Finish(x.msg2); err != nil {
		t.Fatal(err)
	}
	if _, err := x.bm.Finish(x.msg2); err == nil {
		t.Fatal("second Finish succeeded")
	}
	// A failed Finish also consumes the state.
	y := multiply(t, r, as, bs, "sid 2", 2)
	if _, err := y.bm.Finish(y.msg2[:10]); err == nil {
		t.Fatal("short message accepted")
	}
	if _, err := y.bm.Finish(y.msg2); err == nil {
		t.Fatal("Finish after a failed Finish succeeded")
	}
}

// TestBitFlipsMsg1: every flip in Bob's message is caught — in the OT
// extension by Alice's KOS check (χ hashes u), in the version byte by
// Alice's parser, and in δ by Bob, since msg1 is hashed into θ and his μ'
// then differs from Alice's μ. All bits of the header and of the KOS check
// values, every 4th bit of δ and every 499th bit of u are flipped (sampled
// to keep the test short under -race).
func TestBitFlipsMsg1(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	const sid = "sid"
	beta := &randScalars(t, r, 1)[0]
	a := randScalars(t, r, 2)
	start := func() (*BobMul, []byte) {
		bm, m1, err := bs.Start([]byte(sid), beta, mrand.NewChaCha8([32]byte{41}))
		if err != nil {
			t.Fatal(err)
		}
		return bm, m1
	}
	_, m1 := start()
	n := len(m1) * 8
	tested := 0
	for bit := range n {
		inHead := bit < 8 || (bit < 8*(1+32) && bit%4 == 0)
		inCheck := bit >= n-8*48
		if !inHead && !inCheck && (bit < 8*(1+32) || bit%499 != 0) {
			continue
		}
		tested++
		bad := bytes.Clone(m1)
		bad[bit/8] ^= 1 << (bit % 8)
		_, m2, err := as.Multiply([]byte(sid), a, bad, r)
		if err != nil {
			if !errors.Is(err, ErrCheatDetected) {
				t.Fatalf("bit %d: error does not wrap ErrCheatDetected: %v", bit, err)
			}
			continue
		}
		if bit < 8 || bit >= 8*(1+32) {
			t.Fatalf("flip of bit %d (outside δ) accepted by Alice", bit)
		}
		// δ flipped: Alice cannot tell, Bob must catch it.
		bm, _ := start()
		if _, err := bm.Finish(m2); !errors.Is(err, ErrCheatDetected) {
			t.Fatalf("flip of δ bit %d not caught by Bob: %v", bit-8, err)
		}
	}
	if tested < 500 {
		t.Fatalf("only %d flips tested", tested)
	}
}

// TestBitFlipsMsg2: every flip in Alice's message makes Bob's Finish fail:
// the header by parsing, ã by decoding or because θ hashes ã, η and μ by
// the check. All bits of the header, every 4th bit of μ, every 8th bit of
// η and every 3999th bit of ã are flipped (sampled to keep the test short
// under -race).
func TestBitFlipsMsg2(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	const sid = "sid"
	beta := &randScalars(t, r, 1)[0]
	a := randScalars(t, r, 2)
	start := func() (*BobMul, []byte) {
		rr := mrand.NewChaCha8([32]byte{42})
		bm, m1, err := bs.Start([]byte(sid), beta, rr)
		if err != nil {
			t.Fatal(err)
		}
		return bm, m1
	}
	_, m1 := start()
	_, m2, err := as.Multiply([]byte(sid), a, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	n := len(m2) * 8
	aTildeEnd := 8 * (2 + Xi*(2+Rho)*32)
	for bit := range n {
		switch {
		case bit < 16:
		case bit >= n-256 && bit%4 == 0:
		case bit < aTildeEnd && bit%3999 == 0:
		case bit >= aTildeEnd && bit < n-256 && bit%8 == 0:
		default:
			continue
		}
		bad := bytes.Clone(m2)
		bad[bit/8] ^= 1 << (bit % 8)
		bm, _ := start()
		if _, err := bm.Finish(bad); !errors.Is(err, ErrCheatDetected) {
			t.Fatalf("flip of msg2 bit %d not caught: %v", bit, err)
		}
	}
	bm, _ := start()
	d, err := bm.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 {
		t.Fatal("unflipped message rejected or wrong ℓ")
	}
}

// TestCheatingAliceCaught: Alice offsets her input in one OT j only (the
// selective-failure attack: an inconsistent a in one correlation), keeping
// η and μ those of the honest input. Bob's check fails exactly when his
// choice bit ω_j is 1; when ω_j = 0 the offset does not reach his output,
// and the product must be correct. Both the input columns and the check
// columns are attacked.
func TestCheatingAliceCaught(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	const ell = 2
	w := ell + Rho
	caught, harmless := 0, 0
	for trial, j := range []int{0, 1, 7, 200, 415, 3, 4, 5} {
		for col := range w { // the ℓ input columns and the ρ check columns
			sid := []byte{byte(trial), byte(col)}
			beta := &randScalars(t, r, 1)[0]
			a := randScalars(t, r, ell)
			bm, m1, err := bs.Start(sid, beta, r)
			if err != nil {
				t.Fatal(err)
			}
			c, m2, err := as.multiply(sid, a, m1, r, func(aTilde []byte) {
				off := 32 * (j*w + col)
				v, err := curve.DecodeScalar(aTilde[off : off+32])
				if err != nil {
					t.Fatal(err)
				}
				var e secp256k1.ModNScalar
				e.SetInt(12345)
				v.Add(&e)
				copy(aTilde[off:], curve.EncodeScalar(v))
			})
			if err != nil {
				t.Fatal(err)
			}
			omegaJ := bm.omega[j]
			d, err := bm.Finish(m2)
			if omegaJ == 1 {
				if !errors.Is(err, ErrCheatDetected) {
					t.Fatalf("inconsistent input at OT %d column %d with ω_j = 1 not caught", j, col)
				}
				caught++
				continue
			}
			if err != nil {
				t.Fatalf("OT %d column %d with ω_j = 0 rejected: %v", j, col, err)
			}
			checkProduct(t, a, c, d, beta)
			harmless++
		}
	}
	if caught == 0 || harmless == 0 {
		t.Fatalf("caught %d, harmless %d: choose other OTs", caught, harmless)
	}
}

func TestSessionAndPairBinding(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	beta := &randScalars(t, r, 1)[0]
	a := randScalars(t, r, 2)
	// Alice under another sid: the OT-extension check fails.
	_, m1, _ := bs.Start([]byte("sid A"), beta, r)
	if _, _, err := as.Multiply([]byte("sid B"), a, m1, r); !errors.Is(err, ErrCheatDetected) {
		t.Fatalf("message for another session accepted: %v", err)
	}
	// Alice with the seeds of another pair: caught too.
	other, _ := setupPair(t, r)
	_, m1, _ = bs.Start([]byte("sid C"), beta, r)
	if _, _, err := other.Multiply([]byte("sid C"), a, m1, r); !errors.Is(err, ErrCheatDetected) {
		t.Fatalf("message for another pair accepted: %v", err)
	}
	// Alice's answer replayed to a Bob of another session.
	bm1, m1, _ := bs.Start([]byte("sid D"), beta, r)
	bm2, m1b, _ := bs.Start([]byte("sid E"), beta, r)
	_, m2, err := as.Multiply([]byte("sid D"), a, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	_ = m1b
	if _, err := bm2.Finish(m2); !errors.Is(err, ErrCheatDetected) {
		t.Fatalf("answer replayed into another session accepted: %v", err)
	}
	if _, err := bm1.Finish(m2); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputs(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	beta := &randScalars(t, r, 1)[0]
	_, m1, _ := bs.Start([]byte("s"), beta, r)
	if _, _, err := as.Multiply([]byte("s"), nil, m1, r); err == nil {
		t.Fatal("ℓ = 0 accepted")
	}
	if _, _, err := as.Multiply([]byte("s"), make([]secp256k1.ModNScalar, MaxEll+1), m1, r); err == nil {
		t.Fatal("ℓ > MaxEll accepted")
	}
	for _, bad := range [][]byte{nil, m1[:len(m1)-1], append(bytes.Clone(m1), 0)} {
		if _, _, err := as.Multiply([]byte("s"), randScalars(t, r, 2), bad, r); !errors.Is(err, ErrCheatDetected) {
			t.Fatalf("msg1 of length %d accepted", len(bad))
		}
	}
	// δ >= q is rejected.
	bad := bytes.Clone(m1)
	copy(bad[1:33], bytes.Repeat([]byte{0xff}, 32))
	if _, _, err := as.Multiply([]byte("s"), randScalars(t, r, 2), bad, r); !errors.Is(err, ErrCheatDetected) {
		t.Fatal("non-canonical δ accepted")
	}
	// ã >= q is rejected, and so is a message claiming another ℓ.
	x := multiply(t, r, as, bs, "t", 2)
	bad = bytes.Clone(x.msg2)
	copy(bad[2:34], bytes.Repeat([]byte{0xff}, 32))
	if _, err := x.bm.Finish(bad); !errors.Is(err, ErrCheatDetected) {
		t.Fatal("non-canonical ã accepted")
	}
	y := multiply(t, r, as, bs, "u", 2)
	bad = bytes.Clone(y.msg2)
	bad[1] = 3
	if _, err := y.bm.Finish(bad); !errors.Is(err, ErrCheatDetected) {
		t.Fatal("wrong ℓ accepted")
	}
}

func TestSetupEncoding(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	ab, _ := as.MarshalBinary()
	bb, _ := bs.MarshalBinary()
	var as2 AliceSetup
	var bs2 BobSetup
	if err := as2.UnmarshalBinary(ab); err != nil || !as2.Equal(as) {
		t.Fatal("Alice setup round trip failed")
	}
	if err := bs2.UnmarshalBinary(bb); err != nil || !bs2.Equal(bs) {
		t.Fatal("Bob setup round trip failed")
	}
	if as2.UnmarshalBinary(bb) == nil || bs2.UnmarshalBinary(ab) == nil {
		t.Fatal("setup of the other role accepted")
	}
	for _, b := range [][]byte{nil, ab[:len(ab)-1], append(bytes.Clone(ab), 0)} {
		if as2.UnmarshalBinary(b) == nil {
			t.Fatalf("Alice setup of length %d accepted", len(b))
		}
	}
	v2 := bytes.Clone(bb)
	v2[0] = 2
	if bs2.UnmarshalBinary(v2) == nil {
		t.Fatal("unknown version accepted")
	}
	// The restored seeds still multiply correctly.
	x := multiply(t, r, &as2, &bs2, "after restore", 2)
	d, err := x.bm.Finish(x.msg2)
	if err != nil {
		t.Fatal(err)
	}
	checkProduct(t, x.a, x.c, d, x.beta)
}

func FuzzSetupUnmarshal(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{1})
	as, bs := setupPair(f, r)
	ab, _ := as.MarshalBinary()
	bb, _ := bs.MarshalBinary()
	f.Add(ab)
	f.Add(bb)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a AliceSetup
		if a.UnmarshalBinary(b) == nil {
			if out, _ := a.MarshalBinary(); !bytes.Equal(out, b) {
				t.Fatal("Alice setup not canonical")
			}
		}
		var bo BobSetup
		if bo.UnmarshalBinary(b) == nil {
			if out, _ := bo.MarshalBinary(); !bytes.Equal(out, b) {
				t.Fatal("Bob setup not canonical")
			}
		}
	})
}

func FuzzMultiplyMsg1(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{2})
	as, bs := setupPair(f, r)
	var beta secp256k1.ModNScalar
	beta.SetInt(3)
	_, m1, _ := bs.Start([]byte("sid"), &beta, r)
	f.Add(m1)
	f.Add([]byte{1})
	a := make([]secp256k1.ModNScalar, 2)
	f.Fuzz(func(t *testing.T, m []byte) {
		_, _, err := as.Multiply([]byte("sid"), a, m, r)
		if err == nil && !bytes.Equal(m[33:], m1[33:]) {
			t.Fatal("accepted a forged OT-extension message")
		}
	})
}

func FuzzFinishMsg2(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{3})
	as, bs := setupPair(f, r)
	var beta secp256k1.ModNScalar
	beta.SetInt(5)
	_, m1, _ := bs.Start([]byte("sid"), &beta, mrand.NewChaCha8([32]byte{4}))
	a := make([]secp256k1.ModNScalar, 1)
	a[0].SetInt(7)
	_, m2, _ := as.Multiply([]byte("sid"), a, m1, r)
	f.Add(m2)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, m []byte) {
		bm, _, _ := bs.Start([]byte("sid"), &beta, mrand.NewChaCha8([32]byte{4}))
		if _, err := bm.Finish(m); err == nil && !bytes.Equal(m, m2) {
			t.Fatal("accepted a message that is not Alice's")
		}
	})
}

func BenchmarkSetup(b *testing.B) {
	r := mrand.NewChaCha8([32]byte{5})
	var n1, n2 int
	for b.Loop() {
		st, m1, _ := SetupBob([]byte("pair"), r)
		_, m2, err := SetupAlice([]byte("pair"), m1, r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Finish(m2); err != nil {
			b.Fatal(err)
		}
		n1, n2 = len(m1), len(m2)
	}
	b.ReportMetric(float64(n1), "msg1-bytes")
	b.ReportMetric(float64(n2), "msg2-bytes")
}

func BenchmarkMultiply2(b *testing.B) {
	r := mrand.NewChaCha8([32]byte{6})
	as, bs := setupPair(b, r)
	beta := &randScalars(b, r, 1)[0]
	a := randScalars(b, r, 2)
	var n1, n2 int
	i := 0
	for b.Loop() {
		i++
		sid := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
		bm, m1, err := bs.Start(sid, beta, r)
		if err != nil {
			b.Fatal(err)
		}
		_, m2, err := as.Multiply(sid, a, m1, r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bm.Finish(m2); err != nil {
			b.Fatal(err)
		}
		n1, n2 = len(m1), len(m2)
	}
	b.ReportMetric(float64(n1), "msg1-bytes")
	b.ReportMetric(float64(n2), "msg2-bytes")
}

// TestSecretsNeverPrint: fmt with any verb prints a placeholder, never the
// seeds (fmt would otherwise print unexported fields).
func TestSecretsNeverPrint(t *testing.T) {
	r := testRand(t)
	as, bs := setupPair(t, r)
	var beta secp256k1.ModNScalar
	beta.SetInt(1)
	bm, _, _ := bs.Start([]byte("p"), &beta, r)
	st, _, _ := SetupBob([]byte("q"), r)
	ab, _ := as.MarshalBinary()
	bb, _ := bs.MarshalBinary()
	for _, v := range []any{as, bs, bm, st, *as, *bs} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			if !strings.Contains(out, "redacted") {
				t.Errorf("%s of %T printed %q", verb, v, out)
			}
			for _, secret := range [][]byte{ab[2:18], bb[2:18]} {
				if strings.Contains(out, fmt.Sprintf("%x", secret)) || strings.Contains(out, fmt.Sprint(secret[:4])) {
					t.Errorf("%s of %T leaks seed bytes", verb, v)
				}
			}
		}
	}
}

func TestSetupOneShot(t *testing.T) {
	r := testRand(t)
	st, m1, err := SetupBob([]byte("pair"), r)
	if err != nil {
		t.Fatal(err)
	}
	_, m2, err := SetupAlice([]byte("pair"), m1, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finish(m2); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finish(m2); err == nil {
		t.Fatal("second setup Finish succeeded")
	}
	// Bob's setup message replayed to another pair: his proof of knowledge
	// is bound to the sid, so Alice rejects it.
	if _, _, err := SetupAlice([]byte("other pair"), m1, r); !errors.Is(err, ErrCheatDetected) {
		t.Fatalf("setup message for another pair accepted: %v", err)
	}
}
