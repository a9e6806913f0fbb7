package auth

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// push applies rec to the node's store directly, as a peer's push does:
// past SubmitRecord's checks against the node's current state.
func (e *env) push(rec *record.Record) error {
	e.t.Helper()
	ctx := context.Background()
	return e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec.Marshal()) })
}

// TestDeveloperModeChangePushed plays a developer against alice's
// user-mode and hybrid-mode accounts after a mode change and a change of
// developer keys: it moves the scope to developer mode, adds a second
// developer key (so both keys sign), signs account.mode records moving
// alice to developer mode with every key it has, and pushes them straight
// to a node (a peer's push: no submission check). The node stores them
// (an account.mode applies the same in any order) and alice's account
// stays in its mode: the developer's keys alone never approve, nor add a
// key that does.
func TestDeveloperModeChangePushed(t *testing.T) {
	for _, m := range []record.Mode{record.ModeUser, record.ModeHybrid} {
		t.Run(m.String(), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			scope, dev := e.scope(m, record.P256)
			e.register(scope, "alice")
			acct := e.acct("alice")
			cfg := e.config(scope)
			cfg.Mode = record.ModeDeveloper
			dev2 := key(t, record.Ed25519)
			cfg.DevKeys = append(cfg.DevKeys, dev2.Public())
			if err := e.updateScope(scope, 1, cfg, dev); err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); seq <= 3; seq++ {
				body := (&record.AccountModeBody{Scope: scope, Account: acct, Seq: seq, Mode: record.ModeDeveloper}).Marshal()
				for _, signers := range [][]*record.PrivateKey{{dev}, {dev2}, {dev, dev2}} {
					r, err := record.SignQuorum(record.AccountMode, body, signers...)
					if err != nil {
						t.Fatal(err)
					}
					_, err = e.svc.SubmitAuthRecord(ctx, api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
					wantCode(t, err, api.CodeAuthBadProof, "submitting the developer's account.mode")
					if err := e.push(r); err != nil {
						t.Fatalf("pushed account.mode: %v", err)
					}
				}
			}
			if got, err := e.svc.State().AccountMode(ctx, scope, acct, &cfg); err != nil || got != m {
				t.Fatalf("alice's mode after the developer's pushes: %v %v, want %v", got, err, m)
			}
			mine := key(t, record.Ed25519)
			add, _ := record.SignQuorum(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: acct, Credential: record.KeyCredential(mine.Public())}).Marshal(), dev, dev2)
			if err := e.push(add); err != nil {
				t.Fatalf("pushed credential.add: %v", err)
			}
			for i, k := range []*record.PrivateKey{dev, dev2} {
				o := op(scope, acct, byte(i))
				_, err := e.svc.Authorize(ctx, o, header(keyProof(t, mine, scope, acct, o, e), devProof(t, k, scope, acct, o, e.clock.now())))
				if err == nil {
					t.Fatalf("developer key %d with a key it added approves as alice", i)
				}
				o = op(scope, acct, byte(10+i))
				_, err = e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, acct, o, e.clock.now()), devProof(t, dev2, scope, acct, o, e.clock.now())))
				wantCode(t, err, api.CodeAuthIncomplete, "both developer keys")
			}
		})
	}
}

// TestRemovedDeveloperKeyLosesAdds plays a stolen developer key of a
// developer-mode scope that a quorum of the other keys removes: a key it
// added to an account before the removal stops approving once the
// removal applies, and one it adds after (pushed by a peer, past the
// submission check) never approves; a node refuses its submission. The
// result is the same whichever of the removal and the add a node applies
// first.
func TestRemovedDeveloperKeyLosesAdds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k1, k2, thief := key(t, record.P256), key(t, record.P256), key(t, record.Ed25519)
	b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeDeveloper, SessionTTL: 3600,
		DevKeys: []record.PublicKey{k1.Public(), k2.Public(), thief.Public()}}}
	rand.Read(b.Nonce[:])
	sc, _ := record.Sign(record.ScopeCreate, b.Marshal(), k1)
	if _, err := e.svc.CreateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(sc.Marshal())}); err != nil {
		t.Fatal(err)
	}
	scope := b.ScopeID()
	reg, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "bob", Time: e.clock.now().Unix()}).Marshal(), k1)
	if err := e.svc.SubmitRecord(ctx, reg); err != nil {
		t.Fatal(err)
	}
	before, after := key(t, record.Ed25519), key(t, record.Ed25519)
	addBy := func(k *record.PrivateKey, cred *record.PrivateKey) *record.Record {
		r, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "bob", Credential: record.KeyCredential(cred.Public())}).Marshal(), k)
		return r
	}
	if err := e.svc.SubmitRecord(ctx, addBy(thief, before)); err != nil {
		t.Fatal(err)
	}
	approves := func(k *record.PrivateKey, n byte) error {
		o := op(scope, "bob", n)
		_, err := e.svc.Authorize(ctx, o, header(keyProof(t, k, scope, "bob", o, e), devProof(t, k1, scope, "bob", o, e.clock.now())))
		if err != nil {
			return err
		}
		// In developer mode a user's key alone does not approve; the
		// developer's signature does. What matters is that the added
		// key is still one of bob's live credentials.
		live, lerr := e.svc.State().Live(ctx, scope, "bob", func() []byte { id := k.Public().ID(); return id[:] }())
		if lerr != nil {
			t.Fatal(lerr)
		}
		if !live {
			return errDead
		}
		return nil
	}
	if err := approves(before, 1); err != nil {
		t.Fatalf("key added by a current developer key: %v", err)
	}
	cfg := e.config(scope)
	cfg.DevKeys = []record.PublicKey{k1.Public(), k2.Public()}
	if err := e.updateScope(scope, 1, cfg, k1, k2); err != nil {
		t.Fatalf("quorum removing the thief: %v", err)
	}
	if err := approves(before, 2); err == nil {
		t.Fatal("a key the removed developer key added is still live")
	}
	late := addBy(thief, after)
	if err := e.svc.SubmitRecord(ctx, late); code(apiError(err)) != api.CodeAuthBadProof {
		t.Fatalf("submitting an add by a removed key: %v", err)
	}
	if err := e.push(late); err != nil {
		t.Fatalf("pushed add by a removed key: %v", err)
	}
	if err := approves(after, 3); err == nil {
		t.Fatal("a key the removed developer key added after its removal is live")
	}
	// The order does not matter: a node that gets the late add before
	// the removal ends the same.
	u, _ := record.SignQuorum(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg}).Marshal(), k1, k2)
	s := bothOrders(t, []*record.Record{sc, reg, addBy(thief, before)}, []*record.Record{late, u})
	for _, k := range []*record.PrivateKey{before, after} {
		id := k.Public().ID()
		if live, err := s.Live(ctx, scope, "bob", id[:]); err != nil || live {
			t.Fatalf("a removed developer key's add is live (%v)", err)
		}
	}
}

var errDead = &Denial{Code: api.CodeAuthRevoked, Msg: "not live"}
