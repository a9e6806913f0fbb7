package auth

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
)

// TestDevKeyAsCredentialOrders: key k is registered to alice as her
// credential (added by u0) and made a developer key by a later
// scope.update. The records k signs (a credential.add, an account.mode, a
// session.create) end in the same state whether the update arrives
// before or after the credential add (docs/auth.md, "A developer's key is
// the developer's").
func TestDevKeyAsCredentialOrders(t *testing.T) {
	d0, d1, u0, k, u1, sk := key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519)
	cfg := func(m record.Mode, ks ...*record.PrivateKey) record.ScopeConfig {
		c := record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: m, SessionTTL: 3600}
		for _, k := range ks {
			c.DevKeys = append(c.DevKeys, k.Public())
		}
		return c
	}
	sb := &record.ScopeCreateBody{Config: cfg(record.ModeUser, d0, d1)}
	rand.Read(sb.Nonce[:])
	scope := sb.ScopeID()
	c0 := record.KeyCredential(u0.Public())
	setup := []*record.Record{
		must(record.Sign(record.ScopeCreate, sb.Marshal(), d0)),
		must(record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "alice", Time: 1, Credential: &c0}).Marshal(), d0)),
	}
	addK := must(record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "alice", Credential: record.KeyCredential(k.Public())}).Marshal(), u0))
	update := must(record.SignQuorum(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg(record.ModeDeveloper, d0, d1, k)}).Marshal(), d0, d1))
	byK := []*record.Record{
		must(record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "alice", Credential: record.KeyCredential(u1.Public())}).Marshal(), k)),
		must(record.Sign(record.AccountMode, (&record.AccountModeBody{Scope: scope, Account: "alice", Seq: 1, Mode: record.ModeDeveloper}).Marshal(), k)),
		must(record.Sign(record.SessionCreate, (&record.SessionCreateBody{Scope: scope, Account: "alice", Key: sk.Public(), Issued: 1, Expiry: 2}).Marshal(), k)),
	}
	// k's add as a credential, k's records, the update; and the reverse.
	s := bothOrders(t, setup, append(append([]*record.Record{addK}, byK...), update))
	// k is the developer's: never alice's credential, whatever order.
	wantLive(t, s, scope, k, false, "k, a developer key")
	wantLive(t, s, scope, u0, true, "u0")
	// k's add is a developer's: dead while alice is in user mode; and k's
	// account.mode, a developer's signature, does not move a user-mode
	// account.
	wantLive(t, s, scope, u1, false, "u1, added by k")
	_, cur, err := s.Scope(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.AccountMode(context.Background(), scope, "alice", cur); err != nil || m != record.ModeUser {
		t.Fatalf("alice's mode %v (%v), want user", m, err)
	}
}
