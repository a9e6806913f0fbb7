package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// keyProof is an approval signed with a plain key presented as the user's
// credential (the "key" member).
func keyProof(t testing.TB, k *record.PrivateKey, scope, account string, o Operation, e *env) Proof {
	a := approval(scope, account, o, e.clock.now())
	return Proof{Approval: b64.EncodeToString(a.Marshal()), Key: k.Public().String(), Sig: sign(t, k, a)}
}

// updateScope submits a scope.update of cfg at seq signed by keys.
func (e *env) updateScope(scope string, seq uint64, cfg record.ScopeConfig, keys ...*record.PrivateKey) error {
	e.t.Helper()
	r, err := record.SignQuorum(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: seq, Config: cfg}).Marshal(), keys...)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.svc.UpdateScope(context.Background(), api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
	return err
}

func (e *env) config(scope string) record.ScopeConfig {
	e.t.Helper()
	_, cfg, err := e.svc.State().Scope(context.Background(), scope)
	if err != nil {
		e.t.Fatal(err)
	}
	return *cfg
}

// TestDeveloperCannotActAsUser plays a scope's developer (every developer
// key it holds) against an account its user holds, in user and in hybrid
// mode: it cannot add a key of its own as the user's credential (a fresh
// key, or its developer key), cannot approve as the user with such a key,
// and switching the scope to developer mode does not give it the existing
// accounts. Before modes were promises, the credential.add was accepted
// and the developer's key approved as alice.
func TestDeveloperCannotActAsUser(t *testing.T) {
	for _, m := range []record.Mode{record.ModeUser, record.ModeHybrid} {
		t.Run(m.String(), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			scope, dev := e.scope(m, record.P256)
			alice := e.register(scope, "alice")
			s := e.login(alice, scope, e.acct("alice"))

			mine := key(t, record.Ed25519)
			devCred := record.KeyCredential(dev.Public())
			for name, cred := range map[string]record.Credential{"a fresh key": record.KeyCredential(mine.Public()), "the developer key": devCred} {
				add, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: e.acct("alice"), Credential: cred}).Marshal(), dev)
				if err := e.svc.SubmitRecord(ctx, add); !errors.Is(err, ErrInvalid) {
					t.Fatalf("developer added %s to alice's account: %v", name, err)
				}
			}
			// Alice herself cannot be made to hold the developer's key either.
			aliceAdd := &record.CredentialAddBody{Scope: scope, Account: e.acct("alice"), Credential: devCred}
			ch := record.Challenge(record.CredentialAdd, aliceAdd.Marshal())
			byAlice := &record.Record{Kind: record.CredentialAdd, Body: aliceAdd.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(ch)}}
			if err := e.svc.SubmitRecord(ctx, byAlice); !errors.Is(err, ErrInvalid) {
				t.Fatalf("the developer key became alice's credential: %v", err)
			}

			approve := func(o Operation, ps ...Proof) error {
				_, err := e.svc.Authorize(ctx, o, header(ps...))
				return err
			}
			o := op(scope, e.acct("alice"), 1)
			wantCode(t, approve(o, keyProof(t, mine, scope, e.acct("alice"), o, e), devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())), api.CodeAuthUnknown, "the developer's key as alice's")
			o = op(scope, e.acct("alice"), 2)
			wantCode(t, approve(o, keyProof(t, dev, scope, e.acct("alice"), o, e), devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())), api.CodeAuthBadProof, "the developer key as alice's")

			// The developer switches the scope to developer mode (one
			// developer key may: the keys do not change)...
			cfg := e.config(scope)
			cfg.Mode = record.ModeDeveloper
			if err := e.updateScope(scope, 1, cfg, dev); err != nil {
				t.Fatal(err)
			}
			// ...alice's account keeps the mode it was registered under.
			o = op(scope, e.acct("alice"), 3)
			wantCode(t, approve(o, devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())), api.CodeAuthIncomplete, "developer alone after the mode change")
			add, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: e.acct("alice"), Credential: record.KeyCredential(mine.Public())}).Marshal(), dev)
			if err := e.svc.SubmitRecord(ctx, add); !errors.Is(err, ErrInvalid) {
				t.Fatalf("developer added a key after the mode change: %v", err)
			}
			o = op(scope, e.acct("alice"), 4)
			ps := []Proof{s.proof(t, o, e.clock.now())}
			if m == record.ModeHybrid {
				ps = append(ps, devProof(t, dev, scope, e.acct("alice"), o, e.clock.now()))
			}
			if err := approve(o, ps...); err != nil {
				t.Fatalf("alice's own approval after the mode change: %v", err)
			}
			if got, _ := e.svc.State().AccountMode(ctx, scope, e.acct("alice"), &cfg); got != m {
				t.Fatalf("alice's mode is %s, want %s", got, m)
			}

			// An account registered after the change is in developer mode:
			// the developer adds keys to it and approves alone.
			one := uint64(1) // the config it is registered under
			b := &record.AccountRegisterBody{Scope: scope, Account: "bob", Time: e.clock.now().Unix(), ConfigSeq: &one}
			rand.Read(b.Nonce[:])
			reg, _ := record.Sign(record.AccountRegister, b.Marshal(), dev)
			if err := e.svc.SubmitRecord(ctx, reg); err != nil {
				t.Fatal(err)
			}
			o = op(scope, "bob", 5)
			if err := approve(o, devProof(t, dev, scope, "bob", o, e.clock.now())); err != nil {
				t.Fatalf("developer-mode account: %v", err)
			}
			add, _ = record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "bob", Credential: record.KeyCredential(mine.Public())}).Marshal(), dev)
			if err := e.svc.SubmitRecord(ctx, add); err != nil {
				t.Fatalf("developer adding a key in developer mode: %v", err)
			}
		})
	}
}

// TestUserAddsOwnKey: in user mode the user's own credential adds a plain
// key, which then approves as the user.
func TestUserAddsOwnKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	k := key(t, record.Ed25519)
	body := (&record.CredentialAddBody{Scope: scope, Account: e.acct("alice"), Credential: record.KeyCredential(k.Public())}).Marshal()
	r := &record.Record{Kind: record.CredentialAdd, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.CredentialAdd, body))}}
	if err := e.svc.SubmitRecord(ctx, r); err != nil {
		t.Fatal(err)
	}
	o := op(scope, e.acct("alice"), 1)
	if _, err := e.svc.Authorize(ctx, o, header(keyProof(t, k, scope, e.acct("alice"), o, e))); err != nil {
		t.Fatalf("alice's own key: %v", err)
	}
}

// TestDevKeyQuorum plays one stolen developer key of a three-key scope: it
// cannot remove the other keys, add its own, or lower the quorum; it can
// still change what is not the key set. Two of the three (the default
// quorum, a majority) can. A single-key scope keeps working with its key.
func TestDevKeyQuorum(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k1, k2, k3 := key(t, record.P256), key(t, record.Ed25519), key(t, record.P256)
	b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeUser, SessionTTL: 3600,
		DevKeys: []record.PublicKey{k1.Public(), k2.Public(), k3.Public()}}}
	rand.Read(b.Nonce[:])
	r, _ := record.Sign(record.ScopeCreate, b.Marshal(), k1)
	if _, err := e.svc.CreateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(r.Marshal())}); err != nil {
		t.Fatal(err)
	}
	scope := b.ScopeID()
	base := e.config(scope)
	if base.Quorum() != 2 {
		t.Fatalf("default quorum of 3 keys: %d", base.Quorum())
	}
	thief := key(t, record.P256)
	for name, change := range map[string]func(c *record.ScopeConfig){
		"remove the others":  func(c *record.ScopeConfig) { c.DevKeys = c.DevKeys[:1] },
		"add its own key":    func(c *record.ScopeConfig) { c.DevKeys = append(c.DevKeys, thief.Public()) },
		"replace a key":      func(c *record.ScopeConfig) { c.DevKeys[2] = thief.Public() },
		"lower the quorum":   func(c *record.ScopeConfig) { c.DevQuorum = 1 },
		"remove one, swap 2": func(c *record.ScopeConfig) { c.DevKeys = []record.PublicKey{c.DevKeys[0], thief.Public()} },
	} {
		c := base
		c.DevKeys = append([]record.PublicKey{}, base.DevKeys...)
		change(&c)
		wantCode(t, e.updateScope(scope, 1, c, k1), api.CodeAuthBadProof, "one key: "+name)
		if name != "lower the quorum" {
			// Nor with the thief's own signature beside it.
			if err := e.updateScope(scope, 1, c, k1, thief); err == nil {
				t.Fatalf("%s with a non-developer co-signer", name)
			}
		}
	}
	// Reordering the keys is no change; other fields take one key.
	c := base
	c.DevKeys = []record.PublicKey{base.DevKeys[2], base.DevKeys[0], base.DevKeys[1]}
	c.SessionTTL = 60
	if err := e.updateScope(scope, 1, c, k2); err != nil {
		t.Fatalf("one key, session lifetime: %v", err)
	}
	// Two keys remove the third, and set the quorum to 2 of 2.
	c = e.config(scope)
	c.DevKeys = []record.PublicKey{k1.Public(), k2.Public()}
	c.DevQuorum = 2
	if err := e.updateScope(scope, 2, c, k1, k2); err != nil {
		t.Fatalf("quorum removing a key: %v", err)
	}
	c.DevKeys = []record.PublicKey{k1.Public()}
	c.DevQuorum = 0
	wantCode(t, e.updateScope(scope, 3, c, k1), api.CodeAuthBadProof, "one of two keys (quorum 2) removing the other")
	wantCode(t, e.updateScope(scope, 3, c, k3), api.CodeAuthBadProof, "a removed key")

	// A single-key scope (every scope made before quorums) keeps working.
	single, dev := e.scope(record.ModeUser, record.P256)
	c = e.config(single)
	newKey := key(t, record.P256)
	c.DevKeys = []record.PublicKey{newKey.Public()}
	if err := e.updateScope(single, 1, c, dev); err != nil {
		t.Fatalf("single-key scope rotating its key: %v", err)
	}
}

// TestDeveloperRevokesOnly: in user mode the developer may revoke a
// user's credential (it removes power, it never gives any), and that gives
// it no way back in: it still cannot add a key.
func TestDeveloperRevokesOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	rev, _ := record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: e.acct("alice"), CredentialID: alice.ID}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, rev); err != nil {
		t.Fatal(err)
	}
	mine := key(t, record.P256)
	add, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: e.acct("alice"), Credential: record.KeyCredential(mine.Public())}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, add); !errors.Is(err, ErrInvalid) {
		t.Fatalf("developer added a key to an account it emptied: %v", err)
	}
}

// TestLegacyAccountModePinned: an account stored before accounts recorded
// their mode has its scope's mode; a scope.update changing the mode pins
// the old one first, so such accounts are not taken over either.
func TestLegacyAccountModePinned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	s := e.login(alice, scope, e.acct("alice"))
	v, err := e.st.Get(ctx, nsAccount, acctKey(scope, e.acct("alice")))
	if err != nil || len(v) != 10 {
		t.Fatalf("account value: %d bytes, %v", len(v), err)
	}
	if err := e.st.Put(ctx, nsAccount, acctKey(scope, e.acct("alice")), v[:9]); err != nil { // as an older build stored it
		t.Fatal(err)
	}
	cfg := e.config(scope)
	cfg.Mode = record.ModeDeveloper
	if err := e.updateScope(scope, 1, cfg, dev); err != nil {
		t.Fatal(err)
	}
	if m, err := e.svc.State().AccountMode(ctx, scope, e.acct("alice"), &cfg); err != nil || m != record.ModeUser {
		t.Fatalf("legacy account's mode after the change: %s %v", m, err)
	}
	o := op(scope, e.acct("alice"), 1)
	_, err = e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())))
	wantCode(t, err, api.CodeAuthIncomplete, "developer alone on a legacy user-mode account")
	if _, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now()))); err != nil {
		t.Fatalf("alice: %v", err)
	}
}

// TestAccountModeConsent: an account moves to its scope's new mode only
// with its holder's consent. The developer cannot sign that consent for a
// user-mode account, nor move it to a mode the scope is not in, nor replay
// an old consent; once alice signs, the developer approves for her alone.
func TestAccountModeConsent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	alice := e.register(scope, "alice")
	byAlice := func(b *record.AccountModeBody) *record.Record {
		body := b.Marshal()
		return &record.Record{Kind: record.AccountMode, Body: body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: alice.Get(record.Challenge(record.AccountMode, body))}}
	}
	submit := func(r *record.Record) error {
		_, err := e.svc.SubmitAuthRecord(ctx, api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
		return err
	}
	toDev := &record.AccountModeBody{Scope: scope, Account: e.acct("alice"), Seq: 1, Mode: record.ModeDeveloper}
	// The scope is still in user mode: not even alice moves there.
	wantCode(t, submit(byAlice(toDev)), api.CodeAuthBadProof, "a mode the scope is not in")

	cfg := e.config(scope)
	cfg.Mode = record.ModeDeveloper
	if err := e.updateScope(scope, 1, cfg, dev); err != nil {
		t.Fatal(err)
	}
	devSignedRec, _ := record.Sign(record.AccountMode, toDev.Marshal(), dev)
	wantCode(t, submit(devSignedRec), api.CodeAuthBadProof, "the developer consenting for alice")
	o := op(scope, e.acct("alice"), 1)
	_, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())))
	wantCode(t, err, api.CodeAuthIncomplete, "developer alone before alice consents")

	if err := submit(byAlice(toDev)); err != nil {
		t.Fatalf("alice's consent: %v", err)
	}
	o = op(scope, e.acct("alice"), 2)
	if _, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, e.clock.now()))); err != nil {
		t.Fatalf("developer after alice consented: %v", err)
	}

	// The developer moves the scope back to user mode and alice's account
	// with it (in developer mode the developer holds the account)...
	cfg.Mode = record.ModeUser
	if err := e.updateScope(scope, 2, cfg, dev); err != nil {
		t.Fatal(err)
	}
	back, _ := record.Sign(record.AccountMode, (&record.AccountModeBody{Scope: scope, Account: e.acct("alice"), Seq: 2, Mode: record.ModeUser}).Marshal(), dev)
	if err := submit(back); err != nil {
		t.Fatalf("developer returning the account: %v", err)
	}
	// ...and alice's old consent cannot be replayed, even once the scope is
	// in developer mode again.
	cfg.Mode = record.ModeDeveloper
	if err := e.updateScope(scope, 3, cfg, dev); err != nil {
		t.Fatal(err)
	}
	// (The same body is the same record: dropped as a duplicate.)
	if err := submit(byAlice(toDev)); err != nil && code(err) == 0 {
		t.Fatal(err)
	}
	o = op(scope, e.acct("alice"), 3)
	_, err = e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, e.clock.now())))
	wantCode(t, err, api.CodeAuthIncomplete, "developer alone after the account returned to user mode")
}

// TestStoredDeveloperCredentialIgnored: a developer key stored as a user's
// credential by an older build (which let the developer add it) does not
// approve as the user.
func TestStoredDeveloperCredentialIgnored(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	e.register(scope, "alice")
	c := record.KeyCredential(dev.Public())
	if err := e.st.Put(ctx, nsCred, subKey(scope, e.acct("alice"), c.ID), c.Marshal()); err != nil {
		t.Fatal(err)
	}
	o := op(scope, e.acct("alice"), 1)
	_, err := e.svc.Authorize(ctx, o, header(keyProof(t, dev, scope, e.acct("alice"), o, e)))
	wantCode(t, err, api.CodeAuthBadProof, "a stored developer key as alice's credential")
}
