package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

// TestCompatMetaKnownBytes pins the version-2 meta field of an
// x-encrypted-key request: the meta is written out here byte by byte from
// the layout (magic "KMCQ\x02" ‖ unix ms(8) ‖ nonce(16) ‖ node id(32) ‖
// method len(1) ‖ method ‖ scope len(1) ‖ scope ‖ field digest(32)), sealed
// under the request's key, and must open to the values it names; one byte
// more or less is refused as malformed.
func TestCompatMetaKnownBytes(t *testing.T) {
	k, _ := testRSA(t)
	now := t0
	o, _ := newCompatOpener(t, &now, k)
	key := bytes.Repeat([]byte{0x42}, 32)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte(b64.EncodeToString(key)), nil)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(meta []byte) map[string]string {
		body, err := sealFields(aead, map[string][]byte{"a": []byte("1")})
		if err != nil {
			t.Fatal(err)
		}
		meta = append(meta, fieldDigest(body)...)
		if body[MetaField], err = sealField(aead, nil, meta); err != nil {
			t.Fatal(err)
		}
		return body
	}
	head, _ := hex.DecodeString("4b4d435102" + "000001a207a23280" + // magic, t0 in unix ms
		"000102030405060708090a0b0c0d0e0f" + // nonce
		"0000000000000000000000000000000000000000000000000000000000000000" + // node id (zero)
		"02" + "6d31" + "03" + "617070") // "m1", "app"
	got, err := o.Open(context.Background(), b64.EncodeToString(wrapped), seal(bytes.Clone(head)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "m1" || got.Scope != "app" || !got.Time.Equal(t0) || got.Nonce != [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} {
		t.Fatalf("opened %+v", got)
	}
	for name, meta := range map[string][]byte{
		"method longer than the meta": append(bytes.Clone(head[:len(head)-7]), 0xff),
		"no digest byte room":         head[:len(head)-1],
	} {
		if _, err := o.Open(context.Background(), b64.EncodeToString(wrapped), seal(bytes.Clone(meta))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
