package dkls23_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
)

// TestFieldsKnownBytes pins the field encoding of protocol payloads: each
// field is a 4-byte big-endian length and its bytes.
func TestFieldsKnownBytes(t *testing.T) {
	const want = "00000002" + "6162" + "00000000" + "00000001" + "63"
	b := dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(nil, []byte("ab")), nil), []byte("c"))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("fields\n got %s\nwant %s", got, want)
	}
	f, err := dkls23.SplitFields(b, 3)
	if err != nil || string(f[0]) != "ab" || len(f[1]) != 0 || string(f[2]) != "c" {
		t.Fatalf("SplitFields = %q, %v", f, err)
	}
	long := hex.EncodeToString([]byte{0, 0x40, 0, 1}) // 1<<22 + 1 bytes, over the bound
	for name, in := range map[string]string{
		"too few fields":    want[:20],
		"length truncated":  want + "000000",
		"field truncated":   want[:len(want)-2],
		"over-long length":  long,
		"trailing byte":     want + "00",
		"one field missing": "",
	} {
		raw, _ := hex.DecodeString(in)
		n := 3
		if name == "over-long length" {
			raw = append(raw, make([]byte, 1<<22+1)...)
			n = 1
		}
		if name == "length truncated" {
			n = 4
		}
		if _, err := dkls23.SplitFields(raw, n); !errors.Is(err, dkls23.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func BenchmarkSplitFields(b *testing.B) {
	var payload []byte
	for range 4 {
		payload = dkls23.AppendField(payload, bytes.Repeat([]byte{7}, 33))
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := dkls23.SplitFields(payload, 4); err != nil {
			b.Fatal(err)
		}
	}
}
