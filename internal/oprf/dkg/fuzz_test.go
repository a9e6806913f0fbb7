package dkg

import (
	"bytes"
	"testing"
)

// The round messages decode strictly and canonically. Seed corpora are in
// testdata/fuzz/<target>/.

func FuzzParseCommitMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, threshold uint8, refresh bool) {
		th := int(threshold%8) + 1
		m, err := parseCommitMsg(b, th, refresh)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x", b, out)
		}
	})
}

func FuzzParseShare(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseShare(b)
		if err != nil {
			return
		}
		if out := marshalShare(s); !bytes.Equal(out, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x", b, out)
		}
	})
}
