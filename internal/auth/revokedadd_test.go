package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// TestRevokedKeyCannotAdd plays a thief holding alice's plain key after
// the developer revoked it: a credential.add of the thief's own key, signed
// with the revoked one, is refused at submission as revoked. (A peer pushing it past submission gets it stored, for order
// independence, and the added key approves nothing: it is dead while its
// adder is, see TestConvergence.) alice's passkey still adds keys.
func TestRevokedKeyCannotAdd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	acct := e.acct("alice")

	addBy := func(k *record.PrivateKey) *record.Record {
		body := (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(k.Public())}).Marshal()
		return &record.Record{Kind: record.CredentialAdd, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.CredentialAdd, body))}}
	}
	stolen := key(t, record.Ed25519)
	if err := e.svc.SubmitRecord(ctx, addBy(stolen)); err != nil {
		t.Fatal(err)
	}
	sid := stolen.Public().ID()
	rv := must(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: acct, CredentialID: sid[:]}).Marshal(), dev))
	if err := e.svc.SubmitRecord(ctx, rv); err != nil {
		t.Fatal(err)
	}

	thief := key(t, record.Ed25519)
	add := must(record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(thief.Public())}).Marshal(), stolen))
	var d *Denial
	if err := e.svc.SubmitRecord(ctx, add); !errors.As(err, &d) || d.Code != api.CodeAuthRevoked {
		t.Fatalf("credential.add signed by a revoked key: %v", err)
	}
	o := op(scope, acct, 1)
	if _, err := e.svc.Authorize(ctx, o, header(keyProof(t, thief, scope, acct, o, e))); err == nil {
		t.Fatal("the thief's key approves for alice")
	}

	// alice's own passkey still adds a key.
	if err := e.svc.SubmitRecord(ctx, addBy(key(t, record.Ed25519))); err != nil {
		t.Fatalf("alice's add: %v", err)
	}
}
