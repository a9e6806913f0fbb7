package audit

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// FuzzDecodeEntry: the entry decoder never panics, and what it accepts
// re-encodes to the same bytes (one encoding per entry).
func FuzzDecodeEntry(f *testing.F) {
	e := sample(3)
	e.Seq, e.Time = 1, time.Unix(1700000000, 0)
	e.normalize()
	f.Add(e.Marshal())
	e.Code, e.Outcome, e.Keys, e.Signers = -32003, OutcomeRefused, nil, nil
	f.Add(e.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzDecodeSignedHead: as FuzzDecodeEntry, for the heads peers send.
func FuzzDecodeSignedHead(f *testing.F) {
	sh := SignedHead{Head: Head{Cluster: "c1", Node: 2, Seq: 9, Time: time.Unix(1700000000, 5)}, Sig: make([]byte, 64)}
	f.Add(sh.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeSignedHead(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
