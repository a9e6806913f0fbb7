package api

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestUIDNames: the UID service's peer kinds follow the convention.
func TestUIDNames(t *testing.T) {
	for _, k := range []string{PeerUIDKeygen, PeerUIDEvaluate, PeerUIDAbort} {
		if err := CheckPeerKind("uid", k); err != nil {
			t.Error(err)
		}
	}
}

// TestUIDOperationHash: every input changes the hash, and the length
// prefixes keep two splits of the same bytes apart.
func TestUIDOperationHash(t *testing.T) {
	base := UIDOperationHash(MethodUIDEvaluate, "scope", []byte{1, 2, 3})
	for name, h := range map[string][32]byte{
		"method":  UIDOperationHash(MethodUIDCreateKey, "scope", []byte{1, 2, 3}),
		"scope":   UIDOperationHash(MethodUIDEvaluate, "scopf", []byte{1, 2, 3}),
		"payload": UIDOperationHash(MethodUIDEvaluate, "scope", []byte{1, 2, 4}),
		"split":   UIDOperationHash(MethodUIDEvaluate, "scope\x00\x03\x01", []byte{2, 3}),
		"wallet":  OperationHash(MethodUIDEvaluate, [20]byte{}, [32]byte{}),
	} {
		if h == base {
			t.Errorf("%s: same hash", name)
		}
	}
	if UIDOperationHash(MethodUIDEvaluate, "scope", []byte{1, 2, 3}) != base {
		t.Error("not deterministic")
	}
}

func uidInvites() (*UIDKeygenInvite, *UIDEvaluateInvite) {
	k := &UIDKeygenInvite{Scope: sc1, Account: "alice", Proofs: "eyJh", Request: [16]byte{1}, Nonce: [32]byte{2, 3}}
	e := &UIDEvaluateInvite{Scope: sc1, Account: "alice", Proofs: "eyJh", Request: [16]byte{4}, Blinded: [33]byte{1, 5}}
	return k, e
}

// TestUIDInviteEncoding: both invitations round-trip, and every refusal
// wraps ErrUIDBody.
func TestUIDInviteEncoding(t *testing.T) {
	k, e := uidInvites()
	gk, err := DecodeUIDKeygenInvite(k.Marshal())
	if err != nil || *gk != *k {
		t.Fatalf("keygen round trip: %+v %v", gk, err)
	}
	ge, err := DecodeUIDEvaluateInvite(e.Marshal())
	if err != nil || *ge != *e {
		t.Fatalf("evaluate round trip: %+v %v", ge, err)
	}
	enc := e.Marshal()
	bad := map[string][]byte{
		"empty":      nil,
		"version":    append([]byte{2}, enc[1:]...),
		"trailing":   append(bytes.Clone(enc), 0),
		"short":      enc[:len(enc)-1],
		"keygen":     k.Marshal(), // another invitation's length
		"no scope":   (&UIDEvaluateInvite{Account: "a", Proofs: "p"}).Marshal(),
		"no account": (&UIDEvaluateInvite{Scope: sc1, Proofs: "p"}).Marshal(),
		"no proofs":  (&UIDEvaluateInvite{Scope: sc1, Account: "a"}).Marshal(),
		"long scope": (&UIDEvaluateInvite{Scope: strings.Repeat("s", MaxAccountIDLen+1), Account: "a", Proofs: "p"}).Marshal(),
		"utf8":       (&UIDEvaluateInvite{Scope: sc1, Account: "\xff", Proofs: "p"}).Marshal(),
		"upper":      (&UIDEvaluateInvite{Scope: strings.ToUpper(sc1), Account: "a", Proofs: "p"}).Marshal(),
	}
	for name, p := range bad {
		if _, err := DecodeUIDEvaluateInvite(p); !errors.Is(err, ErrUIDBody) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeUIDKeygenInvite(enc); !errors.Is(err, ErrUIDBody) {
		t.Errorf("evaluate body as keygen: %v", err)
	}
}

// FuzzDecodeUIDKeygenInvite: whatever a gateway sends, the decoder
// refuses it or returns the one invitation whose encoding it is.
func FuzzDecodeUIDKeygenInvite(f *testing.F) {
	k, _ := uidInvites()
	f.Add(k.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := DecodeUIDKeygenInvite(p)
		if err != nil {
			if !errors.Is(err, ErrUIDBody) {
				t.Fatalf("error not wrapping ErrUIDBody: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Marshal(), p) {
			t.Fatalf("not canonical: %x", p)
		}
	})
}

// FuzzDecodeUIDEvaluateInvite: as FuzzDecodeUIDKeygenInvite.
func FuzzDecodeUIDEvaluateInvite(f *testing.F) {
	_, e := uidInvites()
	f.Add(e.Marshal())
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := DecodeUIDEvaluateInvite(p)
		if err != nil {
			if !errors.Is(err, ErrUIDBody) {
				t.Fatalf("error not wrapping ErrUIDBody: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Marshal(), p) {
			t.Fatalf("not canonical: %x", p)
		}
	})
}

const (
	sc1 = "0123456789abcdef0123456789abcdef"
	sc2 = "fedcba9876543210fedcba9876543210"
)
