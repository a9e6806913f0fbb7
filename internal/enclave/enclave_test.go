package enclave

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseMeasurement(t *testing.T) {
	want := Measurement(sha256.Sum256([]byte("x")))
	got, err := ParseMeasurement(want.String())
	if err != nil || got != want {
		t.Fatalf("ParseMeasurement(%s) = %s, %v", want, got, err)
	}
	for _, bad := range []string{"", want.String()[2:], want.String() + "00", strings.Repeat("zz", 32)} {
		if _, err := ParseMeasurement(bad); err == nil {
			t.Errorf("ParseMeasurement(%q) succeeded", bad)
		}
	}
	other := want
	other[31] ^= 1
	if !want.Equal(want) || want.Equal(other) {
		t.Error("Measurement.Equal is wrong")
	}
}

func testQuote() *Quote {
	q := &Quote{Platform: PlatformSim, Simulated: true, Evidence: []byte("evidence")}
	q.Measurement[0], q.ReportData[63] = 1, 2
	return q
}

func TestQuoteEncoding(t *testing.T) {
	q := testQuote()
	b, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Known answer: the layout documented on MarshalBinary.
	want := "4b4d51554f544501" + "03" + hex.EncodeToString([]byte("sim")) + "01" +
		"01" + strings.Repeat("00", 31) + strings.Repeat("00", 63) + "02" +
		"00000008" + hex.EncodeToString([]byte("evidence"))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("quote encoding\n got %s\nwant %s", got, want)
	}
	var back Quote
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.Platform != q.Platform || !back.Simulated || back.Measurement != q.Measurement ||
		back.ReportData != q.ReportData || !bytes.Equal(back.Evidence, q.Evidence) {
		t.Fatalf("round trip changed the quote: %+v", back)
	}
	bad := map[string][]byte{
		"trailing":      append(bytes.Clone(b), 0),
		"truncated":     b[:len(b)-1],
		"unknown flag":  func() []byte { c := bytes.Clone(b); c[12] = 3; return c }(),
		"bad magic":     func() []byte { c := bytes.Clone(b); c[0] = 'X'; return c }(),
		"empty":         nil,
		"zero platform": append([]byte(quoteMagic), 0),
	}
	for name, in := range bad {
		var q2 Quote
		if err := q2.UnmarshalBinary(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestSealedEncoding(t *testing.T) {
	s := Sealed{Platform: PlatformSim, Payload: []byte{9, 9}}
	s.Measurement[5] = 7
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Sealed
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.Platform != s.Platform || back.Measurement != s.Measurement || !bytes.Equal(back.Payload, s.Payload) {
		t.Fatalf("round trip: %+v", back)
	}
	if err := back.UnmarshalBinary(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestKeys(t *testing.T) {
	for _, kind := range []KeyKind{KeyEd25519, KeyHPKEXWing, KeyHPKEX25519, KeySecret32, KeyRSA3072} {
		t.Run(kind.String(), func(t *testing.T) {
			k, err := NewKey(kind, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			enc := k.marshal()
			k2, err := ParseKey(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Equal(k2) || !bytes.Equal(k.Public(), k2.Public()) {
				t.Fatal("parse(marshal(k)) differs from k")
			}
			k3, _ := NewKey(kind, rand.Reader)
			if k.Equal(k3) {
				t.Fatal("two fresh keys are equal")
			}
			// Secrets never print, whatever the verb.
			secretHex := hex.EncodeToString(enc[1:])
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
				out := fmt.Sprintf(verb, k)
				if strings.Contains(strings.ToLower(out), secretHex[:16]) || strings.Contains(out, string(enc[1:9])) ||
					!strings.Contains(out, "redacted") {
					t.Errorf("%s prints %q", verb, out)
				}
			}
			msg := []byte("hello")
			switch kind {
			case KeyEd25519:
				s, _ := k.Signer()
				sig, err := s.Sign(nil, msg, crypto.Hash(0))
				if err != nil || !ed25519.Verify(k.Public(), msg, sig) {
					t.Fatal("ed25519 signature does not verify with Public()")
				}
			case KeyHPKEXWing, KeyHPKEX25519:
				sk, _ := k.HPKE()
				kem := sk.KEM()
				pk, err := kem.NewPublicKey(k.Public())
				if err != nil {
					t.Fatal(err)
				}
				ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				pt, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), nil, ct)
				if err != nil || !bytes.Equal(pt, msg) {
					t.Fatal("HPKE round trip through Public() failed")
				}
			case KeyRSA3072:
				r, _ := k.RSA()
				ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &r.PublicKey, msg, nil)
				if err != nil {
					t.Fatal(err)
				}
				pt, err := rsa.DecryptOAEP(sha256.New(), nil, r, ct, nil)
				if err != nil || !bytes.Equal(pt, msg) {
					t.Fatal("RSA-OAEP round trip failed")
				}
			case KeySecret32:
				s, _ := k.Secret()
				if !bytes.Equal(s, enc[1:]) || k.Public() != nil {
					t.Fatal("secret32 accessors wrong")
				}
			}
		})
	}
	if _, err := ParseKey([]byte{byte(KeyEd25519), 1, 2}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short key: %v", err)
	}
	if _, err := ParseKey(append([]byte{99}, make([]byte, 32)...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown kind: %v", err)
	}
}

func FuzzQuoteUnmarshal(f *testing.F) {
	b, _ := testQuote().MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		var q Quote
		if err := q.UnmarshalBinary(in); err != nil {
			return
		}
		out, err := q.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("accepted a non-canonical quote: %x", in)
		}
	})
}

func FuzzSealedUnmarshal(f *testing.F) {
	s := Sealed{Platform: PlatformSim, Payload: []byte("payload")}
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Sealed
		if err := s.UnmarshalBinary(in); err != nil {
			return
		}
		out, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("accepted a non-canonical sealed blob: %x", in)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, kind := range []KeyKind{KeyEd25519, KeyHPKEXWing, KeyHPKEX25519, KeySecret32} {
		k, _ := NewKey(kind, rand.Reader)
		f.Add(k.marshal())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParseKey(in)
		if err != nil {
			return
		}
		if !bytes.Equal(k.marshal(), in) {
			t.Fatalf("accepted a non-canonical key encoding")
		}
	})
}

// leaks reports whether out shows secret in any of the forms fmt uses for
// byte slices.
func leaks(out string, secret []byte) bool {
	dec := fmt.Sprint(secret[:8])
	return strings.Contains(out, dec[1:len(dec)-1]) ||
		strings.Contains(strings.ToLower(out), hex.EncodeToString(secret[:8])) ||
		strings.Contains(out, string(secret[:8]))
}

func TestKeyNestedNeverPrints(t *testing.T) {
	k, err := NewKey(KeyEd25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.marshal()[1:]
	holder := struct {
		P *Key
		V Key
		u Key
	}{k, *k, *k}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d", "%s"} {
		if out := fmt.Sprintf(verb, holder); leaks(out, secret) {
			t.Errorf("%s of a struct holding a Key prints the secret: %s", verb, out)
		}
	}
}
