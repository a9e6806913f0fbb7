package dkls23test

import (
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
)

// RunConcurrent gives the same results as mpctest.Run: shares that sign, a
// signature that verifies.
func TestRunConcurrent(t *testing.T) {
	ps := Parties(3)
	ss, err := KeygenSessions(2, ps, Nonce())
	if err != nil {
		t.Fatal(err)
	}
	shares, err := Shares(RunConcurrent(ss), ps)
	if err != nil {
		t.Fatal(err)
	}
	digest := make([]byte, 32)
	rand.Read(digest)
	sg, err := SignSessions(shares, ps[1:], digest, Nonce())
	if err != nil {
		t.Fatal(err)
	}
	res := RunConcurrent(sg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[1:] {
		if err := res.Outputs[p].(*dkls23.Signature).Verify(shares[0].PublicKey(), digest); err != nil {
			t.Fatal(err)
		}
	}
	if res.Bytes[2] == 0 || res.Dropped != 0 {
		t.Fatalf("bytes %v, dropped %d", res.Bytes, res.Dropped)
	}
}
