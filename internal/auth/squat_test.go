package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// selfRegistration builds a keyed passkey registration of account, as
// any client (or a malicious node) can: regKey signs pk's attestation
// over the payload's challenge.
func selfRegistration(t *testing.T, scope, account string, regKey *record.PrivateKey, pk *authtest.Authenticator) *record.Record {
	t.Helper()
	pub := regKey.Public()
	b := &record.AccountRegisterBody{Scope: scope, Account: account, Time: 1, RegistrationKey: &pub}
	rand.Read(b.Nonce[:])
	ch := record.Challenge(record.AccountRegister, b.Payload())
	resp := pk.Create(ch)
	b.Credential = &record.Credential{ID: pk.ID, Kind: record.CredPasskey, PublicKey: pk.COSEKey()}
	sig, err := regKey.Sign(record.RegistrationMessage(ch, resp))
	if err != nil {
		t.Fatal(err)
	}
	return &record.Record{Kind: record.AccountRegister, Body: b.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: resp, Sig: sig}}
}

// applier applies records to a fresh store holding scope's creation.
func applier(t *testing.T, e *env, scope string) (store.Store, func(rec []byte) error) {
	t.Helper()
	st := openStore(t)
	ctx := context.Background()
	apply := func(rec []byte) error {
		return st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec) })
	}
	if err := apply(e.scopeRecord(scope)); err != nil {
		t.Fatal(err)
	}
	return st, apply
}

// TestSquatChosenAccountID plays mallory, who registers a passkey account
// under the id alice will ask for (finding 5 of issue 13): before
// self-registrations took their registration key's id, the first to
// register "alice" held it, in hybrid mode with the user's half.
func TestSquatChosenAccountID(t *testing.T) {
	for _, m := range []record.Mode{record.ModeUser, record.ModeHybrid} {
		t.Run(m.String(), func(t *testing.T) {
			e := newEnv(t)
			scope, _ := e.scope(m, record.P256)
			_, apply := applier(t, e, scope)
			mallory := authtest.New(testRPID, testOrigin)
			squat := selfRegistration(t, scope, "alice", key(t, record.P256), mallory)
			if err := apply(squat.Marshal()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("mallory's registration of a chosen id applied: %v", err)
			}
			// Through a node's methods too.
			_, err := e.svc.InitiateRegistration(context.Background(), api.InitiateRegistrationParams{Scope: scope, Account: "alice", RegistrationKey: key(t, record.P256).Public().String()})
			wantCode(t, err, api.CodeInvalidParams, "initiate a chosen id")
		})
	}
}

// TestRegistrationRace plays a malicious node that sees alice's
// registration in flight and races one of its own for her account id to
// the other nodes (issue 13, the open part of finding 2). Her id is her
// registration key's, which only she signs with: the race registration
// is refused on every node, before or after hers.
func TestRegistrationRace(t *testing.T) {
	e := newEnv(t)
	scope, _ := e.scope(record.ModeUser, record.P256)
	aliceKey := key(t, record.P256)
	alice := authtest.New(testRPID, testOrigin)
	acct := record.DerivedAccountID(aliceKey.Public())
	genuine := selfRegistration(t, scope, acct, aliceKey, alice)
	race := selfRegistration(t, scope, acct, key(t, record.P256), authtest.New(testRPID, testOrigin))
	for _, order := range [][]*record.Record{{race, genuine}, {genuine, race}} {
		st, apply := applier(t, e, scope)
		if err := apply(order[0].Marshal()); (order[0] == race) != errors.Is(err, ErrInvalid) {
			t.Fatalf("first: %v", err)
		}
		if err := apply(order[1].Marshal()); (order[1] == race) != errors.Is(err, ErrInvalid) {
			t.Fatalf("second: %v", err)
		}
		creds, err := State{st}.Credentials(context.Background(), scope, acct)
		if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, alice.ID) {
			t.Fatalf("alice's credentials: %+v %v", creds, err)
		}
	}
}

// TestDeveloperModeNoSelfRegistration: a scope in developer mode takes no
// passkey self-registration (its developer registers accounts); one is
// kept as missing, and applies once an update to user mode arrives, so
// the two apply the same in either order.
func TestDeveloperModeNoSelfRegistration(t *testing.T) {
	e := newEnv(t)
	scope, dev := e.scope(record.ModeDeveloper, record.P256)
	k := key(t, record.P256)
	reg := selfRegistration(t, scope, record.DerivedAccountID(k.Public()), k, authtest.New(testRPID, testOrigin))
	_, apply := applier(t, e, scope)
	if err := apply(reg.Marshal()); !errors.Is(err, ErrMissing) {
		t.Fatalf("self-registration in developer mode: %v", err)
	}
	_, err := e.svc.InitiateRegistration(context.Background(), api.InitiateRegistrationParams{Scope: scope, RegistrationKey: k.Public().String()})
	wantCode(t, err, api.CodeAuthBadProof, "initiate in developer mode")

	cfg := e.config(scope)
	cfg.Mode = record.ModeUser
	u, err := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg}).Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(u.Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := apply(reg.Marshal()); err != nil {
		t.Fatalf("after the scope moved to user mode: %v", err)
	}
}

// TestTwoRegistrationsOneWinner: two valid registrations of one account
// id (here the developer's, twice) end with the same account on every
// node whatever their order: the one with the lower record id; the
// other's credential is stored dead. Before, the first to arrive won.
func TestTwoRegistrationsOneWinner(t *testing.T) {
	e := newEnv(t)
	scope, dev := e.scope(record.ModeUser, record.P256)
	var regs []*record.Record
	var users []*record.PrivateKey
	for i := range 2 {
		u := key(t, record.Ed25519)
		users = append(users, u)
		c := record.KeyCredential(u.Public())
		r, err := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "alice", Time: 1, Nonce: [16]byte{byte(i)}, Credential: &c}).Marshal(), dev)
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, r)
	}
	win := 0
	if a, b := regs[0].ID(), regs[1].ID(); bytes.Compare(b[:], a[:]) < 0 {
		win = 1
	}
	var snaps []string
	for _, order := range [][]*record.Record{regs, {regs[1], regs[0]}} {
		st, apply := applier(t, e, scope)
		for _, r := range order {
			if err := apply(r.Marshal()); err != nil {
				t.Fatalf("registration: %v", err)
			}
		}
		creds, err := State{st}.Credentials(context.Background(), scope, "alice")
		want := users[win].Public().ID()
		if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, want[:]) {
			t.Fatalf("alice's live credentials: %+v %v", creds, err)
		}
		snaps = append(snaps, snapshot(t, st))
	}
	if snaps[0] != snaps[1] {
		t.Fatal("the two orders end in different states")
	}
}

// TestModeRace: alice registers while the scope is in user mode, and the
// developer moves the scope to developer mode; nodes that receive the
// update before her registration must not put her account in developer
// mode (issue 13, the mode race of docs/auth.md). Her registration names
// the config it was made under, and her account's mode is that config's
// on every node, whatever the order; before, it was the scope's mode
// when her registration arrived.
func TestModeRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	reg := keyedRegistration(t, e, scope, "alice", authtest.New(testRPID, testOrigin))
	b, err := record.DecodeAccountRegister(reg.Body)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(scope)
	cfg.Mode = record.ModeDeveloper
	u, err := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg}).Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]*record.Record{{reg, u}, {u, reg}} {
		st, apply := applier(t, e, scope)
		for _, r := range order {
			if err := apply(r.Marshal()); err != nil {
				t.Fatalf("%s: %v", r.Kind, err)
			}
		}
		s := State{st}
		_, cur, err := s.Scope(ctx, scope)
		if err != nil || cur.Mode != record.ModeDeveloper {
			t.Fatalf("scope: %v %v", cur, err)
		}
		if m, err := s.AccountMode(ctx, scope, b.Account, cur); err != nil || m != record.ModeUser {
			t.Fatalf("%s first: alice's account is in %v mode (%v), want user", order[0].Kind, m, err)
		}
	}
}

// TestDeveloperAddPushed plays a developer (or a node holding a
// developer's record) that pushes a credential.add for a user-mode
// account straight to a peer, bypassing the submission check: Apply
// stores it (an account's mode may depend on updates still to arrive),
// and the key approves nothing, for an account of this build and for one
// whose registration an older build applied.
func TestDeveloperAddPushed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	e.register(scope, "alice")
	acct := e.acct("alice")
	mine := key(t, record.Ed25519)
	b := &record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(mine.Public())}
	add, err := record.Sign(record.CredentialAdd, b.Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SubmitRecord(ctx, add); code(apiError(err)) != api.CodeAuthBadProof {
		t.Fatalf("submitted: %v", err)
	}
	if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, add.Marshal()) }); err != nil {
		t.Fatalf("pushed: %v", err)
	}
	approves := func(what string) {
		t.Helper()
		o := op(scope, acct, 1)
		if _, err := e.svc.Authorize(ctx, o, header(keyProof(t, mine, scope, acct, o, e))); err == nil {
			t.Fatalf("%s: the developer's key approves as alice", what)
		}
	}
	approves("this build")
	// As if an older build had applied alice's registration.
	es, err := e.st.List(ctx, nsRegistration, scope+"/"+acct+"/", 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("registrations: %v %v", es, err)
	}
	if err := e.st.Delete(ctx, nsRegistration, es[0].Key); err != nil {
		t.Fatal(err)
	}
	v, err := e.st.Get(ctx, nsAccount, acctKey(scope, acct))
	if err != nil {
		t.Fatal(err)
	}
	v[9] = byte(record.ModeUser) // the mode an older build stored
	if err := e.st.Put(ctx, nsAccount, acctKey(scope, acct), v); err != nil {
		t.Fatal(err)
	}
	approves("older build's registration")
}
