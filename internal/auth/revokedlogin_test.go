package auth

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestRevokedPasskeyGetsNoSession plays a thief holding a copy of alice's
// passkey after it was revoked: completing a
// passkey sign-in is refused as revoked and stores nothing, so the thief
// never holds a session record; submitting the same session.create by
// hand is refused too. A peer that pushes the thief's session.create past
// submission gets it stored (Apply must take it the same in any order),
// and the session still approves nothing (the use-time check). Another
// account's live passkey still signs in.
func TestRevokedPasskeyGetsNoSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	bob := e.register(scope, "bob")
	stolen := e.register(scope, "alice")
	acct := e.acct("alice")

	// alice reports the passkey stolen; the developer revokes it (a
	// developer may revoke in every mode).
	rv := must(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: acct, CredentialID: stolen.ID}).Marshal(), dev))
	if err := e.svc.SubmitRecord(ctx, rv); err != nil {
		t.Fatal(err)
	}

	// The thief signs in with the revoked passkey.
	sk := key(t, record.P256)
	init, err := e.svc.InitiateAuthentication(ctx, api.InitiateAuthenticationParams{Scope: scope, Account: acct, SessionKey: sk.Public().String(), TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := b64.DecodeString(init.Challenge)
	before := snapshot(t, e.st)
	sess, err := e.svc.CompleteAuthentication(ctx, api.CompleteAuthenticationParams{ChallengeID: init.ChallengeID, Credential: stolen.Get(ch)})
	wantCode(t, err, api.CodeAuthRevoked, "completing a sign-in with a revoked passkey")
	if sess != nil {
		t.Fatal("the thief got a session record")
	}
	if after := snapshot(t, e.st); after != before {
		t.Fatalf("a refused sign-in changed the store:\n%s", lineDiff(before, after))
	}

	// The same session.create submitted by hand.
	pb, _ := b64.DecodeString(init.Payload)
	thiefRec := &record.Record{Kind: record.SessionCreate, Body: pb, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: stolen.Get(ch)}}
	err = e.svc.SubmitRecord(ctx, thiefRec)
	if d, ok := err.(*Denial); !ok || d.Code != api.CodeAuthRevoked {
		t.Fatalf("submitting the thief's session.create: %v, want a revoked denial", err)
	}
	if after := snapshot(t, e.st); after != before {
		t.Fatalf("a refused session.create changed the store:\n%s", lineDiff(before, after))
	}

	// Pushed by a malicious peer: stored, and approves nothing.
	if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, thiefRec.Marshal()) }); err != nil {
		t.Fatalf("pushed session.create: %v", err)
	}
	thief := &session{scope: scope, account: acct, key: sk, rec: b64.EncodeToString(thiefRec.Marshal())}
	o := op(scope, acct, 1)
	_, err = e.svc.Authorize(ctx, o, header(thief.proof(t, o, e.clock.now())))
	wantCode(t, err, api.CodeAuthRevoked, "a pushed session of a revoked passkey")

	// A live passkey still signs in.
	bs := e.login(bob, scope, e.acct("bob"))
	o = op(scope, e.acct("bob"), 2)
	if _, err := e.svc.Authorize(ctx, o, header(bs.proof(t, o, e.clock.now()))); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
}
