package sim

import (
	"crypto/ed25519"
	"testing"

	"github.com/keymesh/keymesh/internal/enclave"
)

func BenchmarkSim(b *testing.B) {
	be, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	secret := make([]byte, 4096)
	b.Run("seal-4KiB", func(b *testing.B) {
		b.SetBytes(int64(len(secret)))
		for b.Loop() {
			if _, err := be.Seal(secret, "share/w"); err != nil {
				b.Fatal(err)
			}
		}
	})
	s, _ := be.Seal(secret, "share/w")
	b.Run("unseal-4KiB", func(b *testing.B) {
		b.SetBytes(int64(len(secret)))
		for b.Loop() {
			if _, err := be.Unseal(s, "share/w"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quote", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.Quote(enclave.ReportData{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	q, _ := be.Quote(enclave.ReportData{})
	roots := []ed25519.PublicKey{be.PlatformKey()}
	b.Run("verify-quote", func(b *testing.B) {
		for b.Loop() {
			if err := VerifyQuote(q, roots); err != nil {
				b.Fatal(err)
			}
		}
	})
}
