package auth

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestCacheRevocationImmediate: Authorize remembers an account's derived
// state (cache.go), and a revocation applied after a cached Authorize
// takes effect on the very next one, whether the node's service
// submitted it or a peer pushed it straight into the store through the
// Applier: of the session, of the credential that made the session, of
// a passkey approving by itself; and an account.mode moving the account
// changes whose approval is needed at once.
func TestCacheRevocationImmediate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	acct := e.acct("alice")
	n := byte(0)
	authorize := func(ps ...func(o Operation) Proof) error {
		n++
		o := op(scope, acct, n)
		var proofs []Proof
		for _, p := range ps {
			proofs = append(proofs, p(o))
		}
		_, err := e.svc.Authorize(ctx, o, header(proofs...))
		return err
	}
	passkey := func(o Operation) Proof {
		a := approval(scope, acct, o, e.clock.now())
		return Proof{Approval: b64.EncodeToString(a.Marshal()), Passkey: alice.Get(a.Challenge())}
	}
	push := func(r *record.Record) {
		t.Helper()
		if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, r.Marshal()) }); err != nil {
			t.Fatalf("pushed %s: %v", r.Kind, err)
		}
	}

	// A session revoked by a peer's push.
	s1 := e.login(alice, scope, acct)
	for range 2 { // the second is served from the cache
		if err := authorize(func(o Operation) Proof { return s1.proof(t, o, e.clock.now()) }); err != nil {
			t.Fatalf("session: %v", err)
		}
	}
	if _, ok := e.svc.accounts.m[scope+"/"+acct]; !ok {
		t.Fatal("Authorize cached nothing")
	}
	rs, _ := record.Sign(record.SessionRevoke, (&record.SessionRevokeBody{Scope: scope, Account: acct, Session: s1.key.Public().ID()}).Marshal(), s1.key)
	push(rs)
	wantCode(t, authorize(func(o Operation) Proof { return s1.proof(t, o, e.clock.now()) }), api.CodeAuthRevoked, "session revoked after a cached Authorize")

	// A user key added by alice, then revoked by the developer through
	// the service.
	k := key(t, record.Ed25519)
	body := (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(k.Public())}).Marshal()
	add := &record.Record{Kind: record.CredentialAdd, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.CredentialAdd, body))}}
	if err := e.svc.SubmitRecord(ctx, add); err != nil {
		t.Fatal(err)
	}
	byKey := func(o Operation) Proof { return keyProof(t, k, scope, acct, o, e) }
	for range 2 {
		if err := authorize(byKey); err != nil {
			t.Fatalf("alice's key: %v", err)
		}
	}
	kid := k.Public().ID()
	rk, _ := record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: acct, CredentialID: kid[:]}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, rk); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authorize(byKey), api.CodeAuthRevoked, "key revoked after a cached Authorize")

	// The passkey, by itself and through a session it made, revoked by a
	// peer's push.
	s2 := e.login(alice, scope, acct)
	bySession := func(o Operation) Proof { return s2.proof(t, o, e.clock.now()) }
	for range 2 {
		if err := authorize(passkey); err != nil {
			t.Fatalf("passkey: %v", err)
		}
		if err := authorize(bySession); err != nil {
			t.Fatalf("session 2: %v", err)
		}
	}
	rp, _ := record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: acct, CredentialID: alice.ID}).Marshal(), dev)
	push(rp)
	wantCode(t, authorize(passkey), api.CodeAuthRevoked, "passkey revoked after a cached Authorize")
	wantCode(t, authorize(bySession), api.CodeAuthRevoked, "session of a passkey revoked after a cached Authorize")
}

// TestCacheModeChangeImmediate: once alice consents to developer mode
// (an account.mode a peer pushes), the developer's approval alone
// suffices on the next Authorize, though a cached one said it did not.
func TestCacheModeChangeImmediate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	acct := e.acct("alice")
	cfg := e.config(scope)
	cfg.Mode = record.ModeDeveloper
	if err := e.updateScope(scope, 1, cfg, dev); err != nil {
		t.Fatal(err)
	}
	o := op(scope, acct, 1)
	_, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, acct, o, e.clock.now())))
	wantCode(t, err, api.CodeAuthIncomplete, "developer alone before alice consents")
	body := (&record.AccountModeBody{Scope: scope, Account: acct, Seq: 1, Mode: record.ModeDeveloper}).Marshal()
	consent := &record.Record{Kind: record.AccountMode, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.AccountMode, body))}}
	if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, consent.Marshal()) }); err != nil {
		t.Fatal(err)
	}
	o = op(scope, acct, 2)
	if _, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, acct, o, e.clock.now()))); err != nil {
		t.Fatalf("developer after alice consented: %v", err)
	}
}

// TestCachePerAccount: a record for one account evicts that account's
// cached state only (cache.go): after bob's logout and a credential.add
// for bob, alice's next Authorize is served from her cached entry, while
// a revocation of alice's credential pushed by a peer is seen by her
// very next Authorize; a scope.update evicts every account of the scope.
func TestCachePerAccount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.Ed25519)
	keys := map[string]*record.PrivateKey{}
	for _, name := range []string{"alice", "bob"} {
		keys[name] = key(t, record.Ed25519)
		cred := record.KeyCredential(keys[name].Public())
		r, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: name, Time: e.clock.now().Unix(), Credential: &cred}).Marshal(), dev)
		if err := e.svc.SubmitRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n := byte(0)
	authorize := func(name string) error {
		n++
		o := op(scope, name, n)
		_, err := e.svc.Authorize(ctx, o, header(keyProof(t, keys[name], scope, name, o, e)))
		return err
	}
	entry := func(name string) *derived {
		e.svc.accounts.mu.Lock()
		defer e.svc.accounts.mu.Unlock()
		return e.svc.accounts.m[scope+"/"+name]
	}
	push := func(r *record.Record) {
		t.Helper()
		if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, r.Marshal()) }); err != nil {
			t.Fatalf("pushed %s: %v", r.Kind, err)
		}
	}
	for _, name := range []string{"alice", "bob"} {
		if err := authorize(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	alice, bob := entry("alice"), entry("bob")
	if alice == nil || bob == nil {
		t.Fatal("Authorize cached nothing")
	}

	// Records for bob: a session key logging out, a key bob adds.
	sk := key(t, record.Ed25519)
	push(must(record.Sign(record.SessionRevoke, (&record.SessionRevokeBody{Scope: scope, Account: "bob", Session: sk.Public().ID()}).Marshal(), sk)))
	add := &record.CredentialAddBody{Scope: scope, Account: "bob", Credential: record.KeyCredential(key(t, record.Ed25519).Public())}
	if err := e.svc.SubmitRecord(ctx, must(record.Sign(record.CredentialAdd, add.Marshal(), keys["bob"]))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if err := authorize(name); err != nil {
			t.Fatalf("%s after bob's records: %v", name, err)
		}
	}
	if entry("alice") != alice {
		t.Fatal("a record for bob evicted alice's cached state")
	}
	if entry("bob") == bob {
		t.Fatal("bob's cached state outlived a record for bob")
	}

	// alice's credential revoked by a peer's push: refused at once.
	id := keys["alice"].Public().ID()
	push(must(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: "alice", CredentialID: id[:]}).Marshal(), dev)))
	wantCode(t, authorize("alice"), api.CodeAuthRevoked, "alice's credential revoked after a cached Authorize")
	bob = entry("bob")
	if err := authorize("bob"); err != nil {
		t.Fatalf("bob after alice's revocation: %v", err)
	}
	if entry("bob") != bob {
		t.Fatal("alice's revocation evicted bob's cached state")
	}

	// A scope.update evicts every account of the scope.
	cfg := e.config(scope)
	cfg.SessionTTL = 60
	if err := e.updateScope(scope, 1, cfg, dev); err != nil {
		t.Fatal(err)
	}
	if err := authorize("bob"); err != nil {
		t.Fatalf("bob after the update: %v", err)
	}
	if d := entry("bob"); d == bob || d.cfg.SessionTTL != 60 {
		t.Fatal("bob's cached state outlived a scope.update")
	}
}
