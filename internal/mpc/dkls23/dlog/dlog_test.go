package dlog

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
)

func statement(t testing.TB) (*secp256k1.ModNScalar, *secp256k1.JacobianPoint) {
	x, err := curve.RandomScalar(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var X secp256k1.JacobianPoint
	curve.ScalarBaseMult(x, &X)
	return x, &X
}

func TestProveVerify(t *testing.T) {
	x, X := statement(t)
	ctx := []byte("session 1, party 2")
	proof, err := Prove(ctx, x, X, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, X, proof); err != nil {
		t.Fatal(err)
	}
	_, Y := statement(t)
	for name, f := range map[string]func() error{
		"other context (replay into another session or by another party)": func() error { return Verify([]byte("session 1, party 3"), X, proof) },
		"other statement":    func() error { return Verify(ctx, Y, proof) },
		"identity statement": func() error { return Verify(ctx, new(secp256k1.JacobianPoint), proof) },
		"flipped z":          func() error { p := bytes.Clone(proof); p[ProofLen-1] ^= 1; return Verify(ctx, X, p) },
		"flipped A":          func() error { p := bytes.Clone(proof); p[5] ^= 1; return Verify(ctx, X, p) },
		"short":              func() error { return Verify(ctx, X, proof[:ProofLen-1]) },
		"long":               func() error { return Verify(ctx, X, append(bytes.Clone(proof), 0)) },
		"z ≥ q": func() error {
			p := bytes.Clone(proof)
			copy(p[33:], bytes.Repeat([]byte{0xff}, 32))
			return Verify(ctx, X, p)
		},
		"A identity": func() error { p := bytes.Clone(proof); copy(p, make([]byte, 33)); return Verify(ctx, X, p) },
	} {
		if err := f(); !errors.Is(err, ErrInvalidProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A proof for the wrong witness does not verify.
func TestProofOfWrongWitnessFails(t *testing.T) {
	_, X := statement(t)
	y, _ := statement(t)
	proof, err := Prove(nil, y, X, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(nil, X, proof); err == nil {
		t.Fatal("accepted")
	}
}

// The Fiat–Shamir hash is unambiguous: contexts that concatenate to the same
// bytes with the statement still give different challenges.
func TestChallengeIsUnambiguous(t *testing.T) {
	_, X := statement(t)
	a := curve.EncodePoint(X)
	e1 := challenge([]byte("ab"), X, a)
	e2 := challenge([]byte("a"), X, a)
	if e1.Equals(e2) {
		t.Fatal("different contexts, same challenge")
	}
}

func FuzzVerify(f *testing.F) {
	x, X := statement(f)
	proof, err := Prove([]byte("ctx"), x, X, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(proof)
	f.Add(make([]byte, ProofLen))
	f.Fuzz(func(t *testing.T, p []byte) {
		if err := Verify([]byte("ctx"), X, p); err == nil && !bytes.Equal(p, proof) {
			// Another valid proof for the same statement would need the
			// witness or a forgery; with overwhelming probability the
			// fuzzer finds neither.
			t.Fatalf("accepted a proof other than the honest one: %x", p)
		}
	})
}

func BenchmarkProve(b *testing.B) {
	x, X := statement(b)
	for b.Loop() {
		Prove(nil, x, X, rand.Reader)
	}
}

func BenchmarkVerify(b *testing.B) {
	x, X := statement(b)
	proof, _ := Prove(nil, x, X, rand.Reader)
	for b.Loop() {
		Verify(nil, X, proof)
	}
}
