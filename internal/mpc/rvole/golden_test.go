package rvole

import (
	"crypto/sha256"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// goldenTranscript runs a setup and one ℓ = 2 multiplication with fixed
// randomness and returns the SHA-256 of every message and output.
func goldenTranscript(t *testing.T) string {
	r := mrand.NewChaCha8([32]byte{'k', 'e', 'y', 'm', 'e', 's', 'h'})
	h := sha256.New()
	st, s1, err := SetupBob([]byte("golden pair"), r)
	if err != nil {
		t.Fatal(err)
	}
	as, s2, err := SetupAlice([]byte("golden pair"), s1, r)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := st.Finish(s2)
	if err != nil {
		t.Fatal(err)
	}
	var beta secp256k1.ModNScalar
	beta.SetInt(7)
	a := make([]secp256k1.ModNScalar, 2)
	a[0].SetInt(11)
	a[1].SetInt(13)
	bm, m1, err := bs.Start([]byte("golden session"), &beta, r)
	if err != nil {
		t.Fatal(err)
	}
	c, m2, err := as.Multiply([]byte("golden session"), a, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	d, err := bm.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]byte{s1, s2, m1, m2} {
		h.Write(m)
	}
	for _, s := range append(c, d...) {
		b := s.Bytes()
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestGoldenTranscript pins the wire format and the derivations (hash
// domains, gadget, pad expansion): any change to them changes this digest,
// and a change must be deliberate (bump the version bytes, regenerate with
// KEYMESH_REGENERATE_GOLDEN=1).
func TestGoldenTranscript(t *testing.T) {
	got := goldenTranscript(t)
	const file = "testdata/golden_transcript.txt"
	if os.Getenv("KEYMESH_REGENERATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("transcript digest %s, want %s", got, want)
	}
}
