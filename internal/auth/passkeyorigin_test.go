package auth

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestPasskeyOriginOrders: passkey-proven records made on the scope's
// first origin, and a scope.update that replaces that origin with another,
// end in the same state on two stores that apply them in opposite orders
// (TestConvergence's first passkey finding, seed 5362851093403644616).
// Before passkeyorigin.go, the store that applied the update first refused
// the registration, the session and the add for good (the account did not
// exist there), and a record made on the new origin was refused by the
// store that had not applied the update yet instead of kept for it.
func TestPasskeyOriginOrders(t *testing.T) {
	ctx := context.Background()
	const o0, o1 = testOrigin + "0", testOrigin + "1"
	dev, regKey, sess, added := key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519)
	cfg := record.ScopeConfig{RPID: testRPID, Origins: []string{o0}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}
	sc := &record.ScopeCreateBody{Config: cfg}
	scope := sc.ScopeID()
	acct := record.DerivedAccountID(regKey.Public())
	pk := authtest.New(testRPID, o0)

	rk := regKey.Public()
	rb := &record.AccountRegisterBody{Scope: scope, Account: acct, Time: 1, RegistrationKey: &rk, Credential: &record.Credential{ID: pk.ID, Kind: record.CredPasskey, PublicKey: pk.COSEKey()}}
	ch := record.Challenge(record.AccountRegister, rb.Payload())
	att := pk.Create(ch)
	regSig, err := regKey.Sign(record.RegistrationMessage(ch, att))
	if err != nil {
		t.Fatal(err)
	}
	reg := &record.Record{Kind: record.AccountRegister, Body: rb.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: att, Sig: regSig}}
	byPasskey := func(origin string, k record.Kind, body []byte) *record.Record {
		pk.Origin = origin
		return &record.Record{Kind: k, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: pk.Get(record.Challenge(k, body))}}
	}
	// A session made on origin 0, a key added on origin 1.
	session := byPasskey(o0, record.SessionCreate, (&record.SessionCreateBody{Scope: scope, Account: acct, Key: sess.Public(), Issued: 1000, Expiry: 2000}).Marshal())
	add := byPasskey(o1, record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(added.Public())}).Marshal())
	next := cfg
	next.Origins = []string{o1}
	update := must(record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: next}).Marshal(), dev))
	create := must(record.Sign(record.ScopeCreate, sc.Marshal(), dev))

	orders := [][]*record.Record{
		{create, reg, session, add, update},
		{create, update, add, session, reg},
	}
	users := []*record.PrivateKey{added}
	var first string
	for i, recs := range orders {
		st := openStore(t)
		var raw [][]byte
		for _, r := range recs {
			raw = append(raw, r.Marshal())
		}
		applyAll(t, st, raw)
		s := State{st}
		if _, err := s.credential(ctx, scope, acct, pk.ID); err != nil {
			t.Errorf("order %d: the passkey registered on the removed origin: %v", i, err)
		}
		if _, err := s.credential(ctx, scope, acct, func() []byte { id := added.Public().ID(); return id[:] }()); err != nil {
			t.Errorf("order %d: the key added on the new origin: %v", i, err)
		}
		sid := sess.Public().ID()
		if _, ok, err := get(ctx, st, nsSession, subKey(scope, acct, sid[:])); err != nil || !ok {
			t.Errorf("order %d: the session made on the removed origin is not stored (%v)", i, err)
		}
		d := stateDigest(t, st, scope, []string{acct}, users, [][]byte{pk.ID}, []*record.PrivateKey{sess})
		if i == 0 {
			first = d
		} else if d != first {
			t.Fatalf("order %d ends in another state than order 0:\n%s", i, lineDiff(first, d))
		}
	}

	// A proof on an origin no config has is a missing dependency, not a
	// final refusal.
	st := openStore(t)
	applyAll(t, st, [][]byte{create.Marshal(), reg.Marshal()})
	other := byPasskey(testOrigin+"2", record.SessionCreate, (&record.SessionCreateBody{Scope: scope, Account: acct, Key: sess.Public(), Issued: 1000, Expiry: 2000, Nonce: [16]byte{1}}).Marshal())
	err = st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, other.Marshal()) })
	if d, ok := err.(*Denial); !ok || !d.Missing {
		t.Fatalf("a session made on an origin no config has: %v, want a missing dependency", err)
	}
}

// TestPasskeyRemovedOriginSubmission: a client submitting a passkey
// record made on an origin its scope no longer has is refused, though a
// peer's push of it applies (passkeyorigin.go), and a session made on
// the removed origin no longer approves.
func TestPasskeyRemovedOriginSubmission(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.Ed25519)
	alice := e.register(scope, "alice")
	acct := e.acct("alice")
	s := e.login(alice, scope, acct)
	o := op(scope, acct, 1)
	if _, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now()))); err != nil {
		t.Fatalf("session before the origin moved: %v", err)
	}
	cfg := e.config(scope)
	cfg.Origins = []string{testOrigin + "9"}
	if err := e.updateScope(scope, 1, cfg, dev); err != nil {
		t.Fatal(err)
	}
	o = op(scope, acct, 2)
	_, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now())))
	wantCode(t, err, api.CodeAuthBadProof, "session made on the removed origin")

	// A keyed registration and a credential.add made on the old origin.
	regKey := key(t, record.Ed25519)
	pk := authtest.New(testRPID, testOrigin)
	rk := regKey.Public()
	rb := &record.AccountRegisterBody{Scope: scope, Account: record.DerivedAccountID(rk), Time: e.clock.now().Unix(), RegistrationKey: &rk, Credential: &record.Credential{ID: pk.ID, Kind: record.CredPasskey, PublicKey: pk.COSEKey()}}
	ch := record.Challenge(record.AccountRegister, rb.Payload())
	att := pk.Create(ch)
	sig, err := regKey.Sign(record.RegistrationMessage(ch, att))
	if err != nil {
		t.Fatal(err)
	}
	reg := &record.Record{Kind: record.AccountRegister, Body: rb.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: att, Sig: sig}}
	wantCode(t, apiError(e.svc.SubmitRecord(ctx, reg)), api.CodeAuthBadProof, "registration made on the removed origin")
	k := key(t, record.Ed25519)
	body := (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(k.Public())}).Marshal()
	add := &record.Record{Kind: record.CredentialAdd, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.CredentialAdd, body))}}
	wantCode(t, apiError(e.svc.SubmitRecord(ctx, add)), api.CodeAuthBadProof, "credential.add made on the removed origin")
	// A peer's push of either applies: the order-independent rule.
	for _, r := range []*record.Record{reg, add} {
		if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, r.Marshal()) }); err != nil {
			t.Fatalf("pushed %s: %v", r.Kind, err)
		}
	}
}
