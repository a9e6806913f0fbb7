package audit

import (
	"bytes"
	"encoding/json"
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

// FuzzParseHeadJSON: a heads file line (written on a peer's machine) never
// panics the parser, and what it accepts is a head whose binary form
// decodes to the same head.
func FuzzParseHeadJSON(f *testing.F) {
	sh := SignedHead{Head: Head{Cluster: "c1", Node: 2, Seq: 9, Time: time.Unix(1700000000, 5).UTC()}, Sig: make([]byte, 64)}
	line, _ := json.Marshal(sh.JSON())
	f.Add(line)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeadJSON(b)
		if err != nil {
			return
		}
		if d, err := DecodeSignedHead(h.Marshal()); err != nil || !bytes.Equal(d.Marshal(), h.Marshal()) {
			t.Fatalf("accepted a head that does not round-trip: %v", err)
		}
	})
}
