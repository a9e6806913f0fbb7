package vault

import (
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

var benchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}}

// BenchmarkBox compares vault with raw x/crypto nacl/box in one run. The
// raw "seal" does the same work SealTo does (a fresh ephemeral key pair, a
// random nonce, box.Seal); "seal-fixedkey" is box.Seal alone with keys
// already made, the floor no ephemeral-key scheme can reach.
func BenchmarkBox(b *testing.B) {
	r := mustKey(b)
	rpub, rsec := [32]byte(r.Public()), [32]byte(r.k)
	for _, sz := range benchSizes {
		msg := make([]byte, sz.n)
		b.Run("vault/seal/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				if _, err := SealTo(r.Public(), msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/seal/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				epub, esec, err := box.GenerateKey(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				var nonce [24]byte
				if _, err := rand.Read(nonce[:]); err != nil {
					b.Fatal(err)
				}
				out := box.Seal(nonce[:], msg, &nonce, &rpub, esec)
				_, _ = epub, out
			}
		})
		b.Run("raw/seal-fixedkey/"+sz.name, func(b *testing.B) {
			epub, esec, _ := box.GenerateKey(rand.Reader)
			_ = epub
			var nonce [24]byte
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				box.Seal(nonce[:], msg, &nonce, &rpub, esec)
			}
		})
		s, _ := SealTo(r.Public(), msg)
		epub := [32]byte(s.EncryptorPublicKey)
		b.Run("vault/open/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				if _, err := s.Open(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/open/"+sz.name, func(b *testing.B) {
			var nonce [24]byte
			copy(nonce[:], s.Content)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				if _, ok := box.Open(nil, s.Content[24:], &nonce, &epub, &rsec); !ok {
					b.Fatal("raw open failed")
				}
			}
		})
	}
}

// BenchmarkGrantCopy compares MakeCopy (open, SHA-256 check, seal under a
// fresh ephemeral key) with the same steps done with raw nacl/box and no
// hash check.
func BenchmarkGrantCopy(b *testing.B) {
	owner, grantee := mustKey(b), mustKey(b)
	osec, gpub := [32]byte(owner.k), [32]byte(grantee.Public())
	for _, sz := range benchSizes {
		msg := make([]byte, sz.n)
		orig, _ := SealTo(owner.Public(), msg)
		g, err := NewGrant(testUserID, grantee.Public(), "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", time.Time{}, HashContent(msg))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("vault/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				if _, err := MakeCopy(owner, orig, g); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+sz.name, func(b *testing.B) {
			var nonce [24]byte
			copy(nonce[:], orig.Content)
			oenc := [32]byte(orig.EncryptorPublicKey)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				pt, ok := box.Open(nil, orig.Content[24:], &nonce, &oenc, &osec)
				if !ok {
					b.Fatal("raw open failed")
				}
				_, esec, err := box.GenerateKey(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				var n2 [24]byte
				if _, err := rand.Read(n2[:]); err != nil {
					b.Fatal(err)
				}
				box.Seal(n2[:], pt, &n2, &gpub, esec)
			}
		})
	}
}
