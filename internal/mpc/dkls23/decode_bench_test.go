package dkls23_test

import (
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
)

func BenchmarkShareUnmarshal(b *testing.B) {
	s := testShares(b)[0]
	enc, err := s.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		var got dkls23.Share
		if err := got.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}
