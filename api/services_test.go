package api

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestCheckPeerKind: the convention "<service>/<name>/v<N>" holds for the
// kinds the services use, and a kind under another service's prefix, or
// spelt another way, is refused.
func TestCheckPeerKind(t *testing.T) {
	for _, c := range [][2]string{
		{"auth", "auth/reserve/v1"}, {"wallet", "wallet/keygen/v1"}, {"wallet", "wallet/sign/v1"},
		{"counter", PeerCounterGet}, {"counter", "counter/get-all/v12"},
	} {
		if err := CheckPeerKind(c[0], c[1]); err != nil {
			t.Errorf("%s %s: %v", c[0], c[1], err)
		}
	}
	for _, c := range [][2]string{
		{"counter", "auth/reserve/v1"}, // another service's kind
		{"counter", "counter/get"}, {"counter", "counter/get/v0"}, {"counter", "counter/get/v01"},
		{"counter", "counter/get/1"}, {"counter", "counter/Get/v1"}, {"counter", "counter//v1"},
		{"counter", "counter/get/v1/x"}, {"counter", "counter.get"}, {"counter", "counter/get/v+1"},
		{"Counter", "Counter/get/v1"}, {"", "/get/v1"}, {"replica", "replica.push"},
		{"counter", "counter/" + strings.Repeat("a", 65) + "/v1"},
	} {
		if err := CheckPeerKind(c[0], c[1]); err == nil {
			t.Errorf("%s %s: accepted", c[0], c[1])
		}
	}
}

// TestCounterAddEncoding: a body round-trips, and every refusal of
// DecodeCounterAdd wraps ErrCounterBody.
func TestCounterAddEncoding(t *testing.T) {
	b := CounterAdd{Counter: "visits", Delta: 3, Nonce: [16]byte{1, 2}}
	enc := b.Marshal()
	got, err := DecodeCounterAdd(enc)
	if err != nil || *got != b {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := map[string][]byte{
		"empty":    nil,
		"trailing": append(bytes.Clone(enc), 0),
		"short":    enc[:len(enc)-1],
		"delta 0":  (&CounterAdd{Counter: "visits"}).Marshal(),
		"delta":    (&CounterAdd{Counter: "visits", Delta: MaxCounterDelta + 1}).Marshal(),
		"name":     (&CounterAdd{Counter: "Visits", Delta: 1}).Marshal(),
		"no name":  (&CounterAdd{Delta: 1}).Marshal(),
		"long":     (&CounterAdd{Counter: strings.Repeat("a", MaxCounterName+1), Delta: 1}).Marshal(),
	}
	for name, p := range bad {
		if _, err := DecodeCounterAdd(p); !errors.Is(err, ErrCounterBody) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeCounterAdd: whatever a client or a peer sends, DecodeCounterAdd
// either refuses it or returns the one body whose encoding it is.
func FuzzDecodeCounterAdd(f *testing.F) {
	f.Add((&CounterAdd{Counter: "visits", Delta: 3}).Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeCounterAdd(p)
		if err != nil {
			if !errors.Is(err, ErrCounterBody) {
				t.Fatalf("error not wrapping ErrCounterBody: %v", err)
			}
			return
		}
		if !bytes.Equal(b.Marshal(), p) {
			t.Fatalf("not canonical: %x decodes to %+v", p, b)
		}
	})
}
