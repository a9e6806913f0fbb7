package round

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// TestMessageKnownBytes pins the layout documented on MarshalBinary with
// the bytes written out by hand.
func TestMessageKnownBytes(t *testing.T) {
	m := Message{Round: 3, From: 2, To: 0x0105, Echo: bytes.Repeat([]byte{0xee}, 32), Payload: []byte("hi")}
	m.SessionID[0], m.SessionID[31] = 0x11, 0x22
	want := "01" + "11" + strings.Repeat("00", 30) + "22" + "0003" + "0002" + "0105" +
		"00000020" + strings.Repeat("ee", 32) + "00000002" + "6869"
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("message\n got %s\nwant %s", got, want)
	}
	var back Message
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.SessionID != m.SessionID || back.Round != 3 || back.From != 2 || back.To != 0x0105 ||
		!bytes.Equal(back.Echo, m.Echo) || !bytes.Equal(back.Payload, m.Payload) {
		t.Fatalf("decoded %+v", back)
	}
	for name, bad := range map[string]string{
		"short header":      want[:2*headerLen-2],
		"version 2":         "02" + want[2:],
		"from party 0":      want[:70] + "0000" + want[74:],
		"round 0":           want[:66] + "0000" + want[70:],
		"echo not 32k":      want[:78] + "00000001" + "ee" + "00000000",
		"echo too long":     want[:78] + "00008020",
		"payload truncated": want[:len(want)-2],
		"payload too long":  want[:len(want)-12] + "00400001",
		"trailing":          want + "00",
	} {
		raw, _ := hex.DecodeString(bad)
		var x Message
		if err := x.UnmarshalBinary(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func BenchmarkMessageUnmarshal(b *testing.B) {
	m := Message{Round: 2, From: 1, To: 2, Echo: make([]byte, 64), Payload: make([]byte, 16<<10)}
	enc, err := m.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		var got Message
		if err := got.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}
