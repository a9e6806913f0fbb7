package round

import (
	"bytes"
	"testing"
)

func TestSessionIDUnambiguous(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, 16)
	a, err := NewSessionID("ab", []PartyID{1, 2}, 2, nonce, []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSessionID("a", []PartyID{1, 2}, 2, nonce, []byte("bc"))
	c, _ := NewSessionID("ab", []PartyID{2, 1}, 2, nonce, []byte("c"))
	d, _ := NewSessionID("ab", []PartyID{1, 2}, 1, nonce, []byte("c"))
	if a == b || a == d {
		t.Fatal("different tuples gave the same session id")
	}
	if a != c {
		t.Fatal("party order changed the session id")
	}
	for _, bad := range [][]PartyID{{1, 1}, {0, 1}, {}} {
		if _, err := NewSessionID("p", bad, 1, nonce); err == nil {
			t.Errorf("parties %v accepted", bad)
		}
	}
	if _, err := NewSessionID("p", []PartyID{1, 2}, 3, nonce); err == nil {
		t.Error("threshold above n accepted")
	}
	if _, err := NewSessionID("p", []PartyID{1, 2}, 2, nonce[:15]); err == nil {
		t.Error("short nonce accepted")
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := &Message{Round: 3, From: 2, To: 5, Echo: bytes.Repeat([]byte{1}, 64), Payload: []byte("hello")}
	m.SessionID[0] = 9
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("round trip changed the encoding")
	}
	if err := got.UnmarshalBinary(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzMessageUnmarshal(f *testing.F) {
	m := &Message{Round: 1, From: 1, To: 0, Payload: []byte{1, 2, 3}}
	b, _ := m.MarshalBinary()
	f.Add(b)
	m.Echo = make([]byte, 32)
	b, _ = m.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if err := m.UnmarshalBinary(data); err != nil {
			if m.From != 0 || m.Payload != nil {
				t.Fatal("failed decode changed the message")
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatal("decoding is not canonical")
		}
	})
}
