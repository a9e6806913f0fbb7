package api

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeRelayPost: a peer's forwarded post decodes only when it
// re-encodes to the same bytes, within the size and recipient limits.
func FuzzDecodeRelayPost(f *testing.F) {
	f.Add((&RelayPost{To: 1, Message: []byte("m")}).Marshal())
	f.Add((&RelayPost{To: 2, Message: bytes.Repeat([]byte{7}, 100)}).Marshal())
	f.Add(make([]byte, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeRelayPost(b)
		if err != nil {
			if !errors.Is(err, ErrRelayPost) {
				t.Fatalf("error not wrapping ErrRelayPost: %v", err)
			}
			return
		}
		if !bytes.Equal(p.Marshal(), b) || (p.To != 1 && p.To != 2) || len(p.Message) == 0 || len(p.Message) > MaxRelayMessage {
			t.Fatalf("decoded %d bytes into a post that re-encodes differently or breaks a limit", len(b))
		}
	})
}

func TestParseRelayID(t *testing.T) {
	good := "00112233445566778899aabbccddeeff"
	id, err := ParseRelayID("mailbox", good)
	if err != nil || id[0] != 0x00 || id[15] != 0xff {
		t.Fatalf("%x %v", id, err)
	}
	for _, bad := range []string{"", good[:31], good + "0", "00112233445566778899AABBCCDDEEFF", "0x112233445566778899aabbccddeeff", "g0112233445566778899aabbccddeeff"} {
		if _, err := ParseRelayID("mailbox", bad); err == nil {
			t.Errorf("ParseRelayID(%q) accepted", bad)
		}
	}
	if _, err := RelayTo("relay"); err == nil {
		t.Error("RelayTo accepted a third party")
	}
}
