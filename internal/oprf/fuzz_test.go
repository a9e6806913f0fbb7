package oprf

import (
	"bytes"
	"testing"
)

// Every decoder is strict and canonical: if it accepts b, re-encoding gives
// b back. Seed corpora are in testdata/fuzz/<target>/.

func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		out, _ := r.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x", b, out)
		}
	})
}

func FuzzParsePartial(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePartial(b)
		if err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x (%v)", b, out, err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		out, _ := pk.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x", b, out)
		}
	})
}

func FuzzParseKeyShare(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseKeyShare(b)
		if err != nil {
			return
		}
		out, _ := s.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatal("non-canonical key share encoding")
		}
		if !g.NewElement().MulGen(s.k).IsEqual(s.pub.share(s.id)) {
			t.Fatal("accepted a share that does not match its verification share")
		}
	})
}
