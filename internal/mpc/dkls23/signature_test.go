package dkls23

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/crypto"
)

// signWith is textbook ECDSA with a given nonce, producing our Signature.
func signWith(t *testing.T, sk, k *secp256k1.ModNScalar, digest []byte) *Signature {
	t.Helper()
	var R secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(k, &R)
	R.ToAffine()
	var r, m, s, kinv secp256k1.ModNScalar
	r.SetByteSlice(R.X.Bytes()[:])
	m.SetByteSlice(digest)
	kinv.InverseValNonConst(k)
	s.Mul2(&r, sk).Add(&m).Mul(&kinv)
	sig, err := NewSignature(&R, &s)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Known answer: with go-ethereum's RFC 6979 nonce, NewSignature gives
// byte-for-byte the signature go-ethereum's crypto.Sign gives (low s,
// recovery id), for keys and digests that cover both parities and both
// halves of s.
func TestNewSignatureMatchesGoEthereum(t *testing.T) {
	sawHigh, sawOdd := false, false
	for i := range 64 {
		seed := sha256.Sum256([]byte{byte(i)})
		key, err := crypto.ToECDSA(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(seed[:])
		want, err := crypto.Sign(digest[:], key)
		if err != nil {
			t.Fatal(err)
		}
		var sk secp256k1.ModNScalar
		sk.SetByteSlice(seed[:])
		k := secp256k1.NonceRFC6979(seed[:], digest[:], nil, nil, 0)
		got := signWith(t, &sk, k, digest[:])
		if !bytes.Equal(got.Ethereum(), want) {
			t.Fatalf("key %d: got %x, go-ethereum %x", i, got.Ethereum(), want)
		}
		// Raw s before normalisation was high?
		var R secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(k, &R)
		R.ToAffine()
		sawOdd = sawOdd || R.Y.IsOdd()
		sawHigh = sawHigh || got.V != boolByte(R.Y.IsOdd())
		var P secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(&sk, &P)
		if err := got.Verify(&P, digest[:]); err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseEthereum(want)
		if err != nil || parsed.V != got.V || !parsed.R.Equals(&got.R) || !parsed.S.Equals(&got.S) {
			t.Fatalf("ParseEthereum: %v", err)
		}
	}
	if !sawHigh || !sawOdd {
		t.Fatal("vectors did not cover high s and odd y")
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func TestVerifyRejects(t *testing.T) {
	var sk, k secp256k1.ModNScalar
	sk.SetInt(12345)
	k.SetInt(777)
	digest := make([]byte, 32)
	rand.Read(digest)
	sig := signWith(t, &sk, &k, digest)
	var P secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&sk, &P)
	if err := sig.Verify(&P, digest); err != nil {
		t.Fatal(err)
	}
	high := *sig
	high.S.Negate()
	other := bytes.Clone(digest)
	other[0] ^= 1
	var Q secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&k, &Q)
	for name, f := range map[string]func() error{
		"high s":       func() error { return high.Verify(&P, digest) },
		"other digest": func() error { return sig.Verify(&P, other) },
		"short digest": func() error { return sig.Verify(&P, digest[:31]) },
		"other key":    func() error { return sig.Verify(&Q, digest) },
		"identity key": func() error { return sig.Verify(new(secp256k1.JacobianPoint), digest) },
		"zero s":       func() error { z := *sig; z.S.Zero(); return z.Verify(&P, digest) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, b := range map[string][]byte{
		"short":  sig.Ethereum()[:64],
		"v = 4":  append(sig.Ethereum()[:64], 4),
		"high s": high.Ethereum(),
		"r = 0":  append(make([]byte, 32), sig.Ethereum()[32:]...),
	} {
		if _, err := ParseEthereum(b); err == nil {
			t.Errorf("ParseEthereum %s: accepted", name)
		}
	}
}
