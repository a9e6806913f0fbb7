package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

func testMessage() *round.Message {
	m := &round.Message{Round: 2, From: 1, To: round.Broadcast, Payload: []byte("p")}
	copy(m.SessionID[:], bytes.Repeat([]byte{0x11}, 32))
	return m
}

// Known answers, worked out by hand from the format in frame.go.
var frameKAT = []struct {
	name string
	f    *frame
	hex  string
}{
	{"ping", &frame{typ: framePing, id: 0x0102030405060708}, "0000000a" + "01" + "04" + "0102030405060708"},
	{"pong", &frame{typ: framePong, id: 9}, "0000000a" + "01" + "05" + "0000000000000009"},
	{"request", &frame{typ: frameRequest, id: 1, kind: "dkg", body: []byte("ab")}, "00000010" + "01" + "02" + "0000000000000001" + "03" + "646b67" + "6162"},
	{"response ok", &frame{typ: frameResponse, id: 2, ok: true, body: []byte("x")}, "0000000c" + "01" + "03" + "0000000000000002" + "00" + "78"},
	{"response error", &frame{typ: frameResponse, id: 3, body: []byte("no")}, "0000000d" + "01" + "03" + "0000000000000003" + "01" + "6e6f"},
	{"msg", &frame{typ: frameMsg, msg: testMessage()}, "00000032" + "01" + "01" +
		"01" + strings.Repeat("11", 32) + "0002" + "0001" + "0000" + "00000000" + "00000001" + "70"},
}

func TestFrameKnownAnswers(t *testing.T) {
	for _, c := range frameKAT {
		b, err := appendFrame(nil, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := hex.EncodeToString(b); got != c.hex {
			t.Fatalf("%s: encoded %s\nwant        %s", c.name, got, c.hex)
		}
		f, n, err := readFrame(bytes.NewReader(b))
		if err != nil || n != len(b) {
			t.Fatalf("%s: decode: %v (%d bytes)", c.name, err, n)
		}
		again, _ := appendFrame(nil, f)
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: round trip changed the frame", c.name)
		}
	}
}

func TestFrameRejects(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			panic(err)
		}
		return b
	}
	cases := map[string]string{
		"version 2":           "0000000a" + "02" + "04" + "0102030405060708",
		"unknown type":        "0000000a" + "01" + "09" + "0102030405060708",
		"short ping":          "00000009" + "01" + "04" + "01020304050607",
		"long ping":           "0000000b" + "01" + "04" + "010203040506070809",
		"empty kind":          "0000000d" + "01" + "02" + "0000000000000001" + "00" + "6162",
		"kind with space":     "0000000d" + "01" + "02" + "0000000000000001" + "02" + "6120",
		"kind past end":       "0000000b" + "01" + "02" + "0000000000000001" + "05",
		"status 2":            "0000000c" + "01" + "03" + "0000000000000002" + "02" + "78",
		"error text not utf8": "0000000c" + "01" + "03" + "0000000000000002" + "01" + "ff",
		"msg trailing byte": "00000033" + "01" + "01" +
			"01" + strings.Repeat("11", 32) + "0002" + "0001" + "0000" + "00000000" + "00000001" + "70" + "00",
		"msg from 0": "00000032" + "01" + "01" +
			"01" + strings.Repeat("11", 32) + "0002" + "0000" + "0000" + "00000000" + "00000001" + "70",
		"header only": "00000001" + "01",
	}
	for name, h := range cases {
		_, _, err := readFrame(bytes.NewReader(unhex(h)))
		if err == nil {
			t.Errorf("%s accepted", name)
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: test frame is truncated: %v", name, err)
		}
	}
	// A length beyond maxFrame is refused before anything is allocated.
	if _, _, err := readFrame(bytes.NewReader(unhex("7fffffff"))); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("huge length: %v", err)
	}
	// A frame cut short is an unexpected EOF, a clean end of stream is EOF.
	if _, _, err := readFrame(bytes.NewReader(unhex("0000000a0104"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty stream: %v", err)
	}
	// Encoding refuses what decoding would refuse.
	for name, f := range map[string]*frame{
		"bad kind":      {typ: frameRequest, kind: "a b"},
		"long error":    {typ: frameResponse, body: bytes.Repeat([]byte("e"), maxErrorText+1)},
		"unknown type":  {typ: 42},
		"huge request":  {typ: frameRequest, kind: "k", body: make([]byte, MaxBody+1)},
		"huge response": {typ: frameResponse, ok: true, body: make([]byte, MaxBody+1)},
	} {
		if _, err := appendFrame(nil, f); err == nil {
			t.Errorf("encoding %s accepted", name)
		}
	}
}

func TestErrorText(t *testing.T) {
	long := errors.New(strings.Repeat("é", maxErrorText))
	b := errorText(long)
	if len(b) > maxErrorText || !bytes.HasPrefix(b, []byte("éé")) {
		t.Fatalf("%d bytes", len(b))
	}
	if _, err := appendFrame(nil, &frame{typ: frameResponse, body: errorText(errors.New("bad \xff byte"))}); err != nil {
		t.Fatalf("sanitised text rejected: %v", err)
	}
}

// FuzzFrame checks that decoding is strict and canonical: whatever decodes
// re-encodes to exactly the bytes it came from.
func FuzzFrame(f *testing.F) {
	for _, c := range frameKAT {
		b, _ := hex.DecodeString(c.hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, n, err := readFrame(bytes.NewReader(data))
		if err != nil {
			if fr != nil {
				t.Fatal("error with a frame")
			}
			return
		}
		out, err := appendFrame(nil, fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(out, data[:n]) {
			t.Fatalf("decoding is not canonical:\n in %x\nout %x", data[:n], out)
		}
	})
}
