package channel

import (
	"crypto/rand"
	"fmt"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// BenchmarkHandshake is the whole handshake: invite, parse, join, accept,
// finish (two X25519 key pairs, four HMACs, two low-order checks).
func BenchmarkHandshake(b *testing.B) {
	for b.Loop() {
		pair(b)
	}
}

// BenchmarkMessage seals and opens one message of each size (an HPKE
// AuthPSK setup on each side: three X25519 operations each).
func BenchmarkMessage(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			ic, jc, _ := pair(b)
			pt := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				m, err := ic.Seal(pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := jc.Open(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNaClBox is the reference in the same run: a NaCl box
// (x/crypto/nacl/box, static keys on both sides, no precomputation) sealed
// and opened, what a relay built on boxes would pay per message, without
// a per-message ephemeral key, sequence or PSK.
func BenchmarkNaClBox(b *testing.B) {
	pubA, privA, _ := box.GenerateKey(rand.Reader)
	pubB, privB, _ := box.GenerateKey(rand.Reader)
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			pt := make([]byte, size)
			var nonce [24]byte
			b.SetBytes(int64(size))
			for b.Loop() {
				rand.Read(nonce[:])
				m := box.Seal(nil, pt, &nonce, pubB, privA)
				if _, ok := box.Open(nil, m, &nonce, pubA, privB); !ok {
					b.Fatal("box did not open")
				}
			}
		})
	}
}
