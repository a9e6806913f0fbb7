package enclave

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Known answers for the sealed-blob and migration-request framings (the
// quote's is in TestQuoteEncoding): the expected bytes are written out from
// the documented layouts, so a change of encoder or decoder that moves a
// byte fails here.

func TestSealedKnownBytes(t *testing.T) {
	s := Sealed{Platform: PlatformSim, Payload: []byte{9, 9}}
	s.Measurement[5] = 7
	want := hex.EncodeToString([]byte(sealedMagic)) + "03" + hex.EncodeToString([]byte("sim")) +
		"0000000000" + "07" + strings.Repeat("00", 26) + "00000002" + "0909"
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("sealed encoding\n got %s\nwant %s", got, want)
	}
	if got := hex.EncodeToString(s.Header()); got != want[:len(want)-12] {
		t.Fatalf("sealed header %s", got)
	}
	wb, _ := hex.DecodeString(want)
	var back Sealed
	if err := back.UnmarshalBinary(wb); err != nil {
		t.Fatal(err)
	}
	if back.Platform != s.Platform || back.Measurement != s.Measurement || !bytes.Equal(back.Payload, s.Payload) {
		t.Fatalf("decoded %+v", back)
	}
	for name, bad := range map[string][]byte{
		"truncated":        wb[:len(wb)-1],
		"empty platform":   append([]byte(sealedMagic), 0),
		"long platform":    append([]byte(sealedMagic), maxPlatformLen+1),
		"bad magic":        append([]byte("KMSEAL\x02"), wb[len(sealedMagic):]...),
		"payload too long": append(append([]byte{}, wb[:len(wb)-6]...), 0x01, 0, 0, 1),
	} {
		if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestMigrationRequestKnownBytes(t *testing.T) {
	qb, err := testQuote().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	req := []byte(migrateRequestMagic)
	req = append(req, 0, 0, 0, 3, 'p', 'u', 'b')
	req = append(req, 0, 0, 0, byte(len(qb)))
	req = append(req, qb...)
	pub, q, err := parseMigrationRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if string(pub) != "pub" || q.Platform != PlatformSim || !bytes.Equal(q.Evidence, []byte("evidence")) {
		t.Fatalf("parsed %q, %+v", pub, q)
	}
	for name, bad := range map[string][]byte{
		"trailing":  append(bytes.Clone(req), 0),
		"truncated": req[:len(req)-1],
		"magic":     append([]byte("x"), req[1:]...),
	} {
		if _, _, err := parseMigrationRequest(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
