package vault_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/vault"
)

// A holder's data is sealed to them; sharing makes a copy re-encrypted for
// the grantee, which the grantee checks against the grant's content hash.
func Example() {
	holder, _ := vault.GenerateKey()
	grantee, _ := vault.GenerateKey()
	issuer, _ := vault.GenerateIssuerKey()

	const userID = "9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a11"
	cred, err := vault.Issue(issuer, userID, `{"type":"KYC"}`, []byte("date of birth: 1815-12-10"), holder.Public())
	if err != nil {
		panic(err)
	}
	fmt.Println("signatures:", cred.Verify() == nil)

	lock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g, _ := vault.NewGrant(userID, grantee.Public(), cred.ID, lock, cred.ContentHash)
	cp, err := vault.MakeCopy(holder, cred.Sealed(), g)
	if err != nil {
		panic(err)
	}
	pt, err := vault.OpenCopy(grantee, cp, g)
	fmt.Printf("grantee reads: %s (%v)\n", pt, err)

	err = g.Revocable(time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println("revoke in 2029 refused:", errors.Is(err, vault.ErrLocked))
	fmt.Printf("keys print as: %v\n", holder)
	// Output:
	// signatures: true
	// grantee reads: date of birth: 1815-12-10 (<nil>)
	// revoke in 2029 refused: true
	// keys print as: vault.PrivateKey(redacted)
}
