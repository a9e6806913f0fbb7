package keygen_test

import (
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// The largest set, 16 parties (240 pairwise OT setups), works end to end:
// key generation, then a signature by 9 of them. Skipped with -short and
// under -race.
func TestKeygenSixteenParties(t *testing.T) {
	if testing.Short() {
		t.Skip("16-party key generation takes seconds")
	}
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(9, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkShares(t, shares, 9, shares[0].PublicKey())
	digest := make([]byte, 32)
	rand.Read(digest)
	signers := []round.PartyID{1, 3, 4, 7, 9, 10, 12, 15, 16}
	sig, _, err := dkls23test.Sign(shares, signers, digest, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.Verify(shares[0].PublicKey(), digest); err != nil {
		t.Fatal(err)
	}
}
