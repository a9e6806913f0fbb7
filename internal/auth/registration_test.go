package auth

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// keyedRegistration runs a passkey registration with a registration key
// through e's RPC methods, and returns the record the node submitted. The
// account is the registration key's (record.DerivedAccountID), whatever
// name is passed.
func keyedRegistration(t *testing.T, e *env, scope, account string, pk *authtest.Authenticator) *record.Record {
	t.Helper()
	ctx := context.Background()
	var got []byte
	e.svc.submit = func(_ context.Context, rec []byte) error { got = rec; return nil }
	regKey := key(t, record.P256)
	account = record.DerivedAccountID(regKey.Public()) // the only id a self-registration takes
	init, err := e.svc.InitiateRegistration(ctx, api.InitiateRegistrationParams{Scope: scope, Account: account, RegistrationKey: regKey.Public().String()})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := b64.DecodeString(init.Challenge)
	resp := pk.Create(ch)
	sig, _ := regKey.Sign(record.RegistrationMessage(ch, resp))
	if _, err := e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: resp, Signature: b64.EncodeToString(sig)}); err != nil {
		t.Fatal(err)
	}
	r, err := record.Unmarshal(got)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRegistrationSwapByPeer plays a malicious peer that receives a
// user's passkey registration and pushes its own version to an honest
// node before the genuine one arrives (finding 2 of issue 13). Before the
// body named its passkey, the peer's "none" attestation over the same
// challenge was applied, and the genuine record was acknowledged as
// already applied: alice's account held only the peer's passkey.
func TestRegistrationSwapByPeer(t *testing.T) {
	gw := newEnv(t) // the gateway the user registers through
	scope, _ := gw.scope(record.ModeUser, record.P256)
	alice := authtest.New(testRPID, testOrigin)
	genuine := keyedRegistration(t, gw, scope, "alice", alice)
	gb, err := record.DecodeAccountRegister(genuine.Body)
	if err != nil || gb.Credential == nil || !bytes.Equal(gb.Credential.ID, alice.ID) || gb.RegistrationKey == nil {
		t.Fatalf("the registration's body does not name alice's passkey: %+v %v", gb, err)
	}
	if genuine.Auth.Kind != record.AuthPasskeyCreateKeyed {
		t.Fatalf("auth kind %d", genuine.Auth.Kind)
	}

	// The honest node: it has the scope, not the registration yet.
	honest := openStore(t)
	ctx := context.Background()
	apply := func(rec []byte) error {
		return honest.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec) })
	}
	if err := apply(gw.scopeRecord(scope)); err != nil {
		t.Fatal(err)
	}

	mallory := authtest.New(testRPID, testOrigin)
	ch := record.Challenge(record.AccountRegister, gb.Payload())
	mcred := record.Credential{ID: mallory.ID, Kind: record.CredPasskey, PublicKey: mallory.COSEKey()}
	withCred := func(c record.Credential) []byte { b := *gb; b.Credential = &c; return b.Marshal() }
	legacy := *gb
	legacy.Credential = nil
	mkey := key(t, record.P256)
	mresp := mallory.Create(ch)
	msig, _ := mkey.Sign(record.RegistrationMessage(ch, mresp))
	forgeries := map[string]*record.Record{
		// The attack of finding 2: the same body, another attestation
		// over the same challenge.
		"same body, its attestation": {Kind: record.AccountRegister, Body: genuine.Body, Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: mresp, Sig: genuine.Auth.Sig}},
		"same body, unkeyed":         {Kind: record.AccountRegister, Body: genuine.Body, Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: mresp}},
		// Its passkey in the body, signed by a key that is not alice's
		// registration key, or with alice's signature of another response.
		"its passkey, its signature":   {Kind: record.AccountRegister, Body: withCred(mcred), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: mresp, Sig: msig}},
		"its passkey, alice signature": {Kind: record.AccountRegister, Body: withCred(mcred), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: mresp, Sig: genuine.Auth.Sig}},
		// The first encoding (passkey taken from the attestation) with
		// alice's payload.
		"legacy encoding": {Kind: record.AccountRegister, Body: legacy.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: mresp}},
	}
	for name, f := range forgeries {
		if err := apply(f.Marshal()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: the honest node applied it: %v", name, err)
		}
	}
	if err := apply(genuine.Marshal()); err != nil {
		t.Fatalf("genuine registration after the forgeries: %v", err)
	}
	creds, err := State{honest}.Credentials(ctx, scope, gb.Account)
	if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, alice.ID) || !bytes.Equal(creds[0].PublicKey, alice.COSEKey()) {
		t.Fatalf("alice's credentials on the honest node: %+v %v", creds, err)
	}

	// A second proof of the applied body (here a garbage signature) is
	// dropped: not applied, not stored, not replicated.
	before := snapshot(t, honest)
	dup := *genuine
	dup.Auth.Sig = make([]byte, 64)
	if err := apply(dup.Marshal()); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("second proof: %v", err)
	}
	for name, f := range forgeries {
		if err := apply(f.Marshal()); !errors.Is(err, ErrInvalid) && !errors.Is(err, replica.ErrDuplicate) {
			t.Fatalf("%s after the genuine one: %v", name, err)
		}
	}
	if snapshot(t, honest) != before {
		t.Fatal("a second proof changed the state")
	}
}

// scopeRecord returns the scope.create record of a scope made by e.scope.
func (e *env) scopeRecord(scope string) []byte {
	e.t.Helper()
	r, ok := e.created[scope]
	if !ok {
		e.t.Fatalf("no create record for scope %s", scope)
	}
	return r
}
