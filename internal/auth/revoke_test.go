package auth

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
)

// bothOrders applies setup, then recs in the given order and in reverse
// order, each on its own store (a refused record is kept and retried, as
// the replica does), checks that both end in the same state, and returns
// the state of the first.
func bothOrders(t *testing.T, setup, recs []*record.Record) State {
	t.Helper()
	var states []State
	var digests []string
	for _, order := range [][]*record.Record{recs, reversedRecs(recs)} {
		st := openStore(t)
		var all [][]byte
		for _, r := range append(slices.Clone(setup), order...) {
			all = append(all, r.Marshal())
		}
		applyAll(t, st, all)
		states = append(states, State{st})
		digests = append(digests, snapshotOps(t, st))
	}
	if digests[0] != digests[1] {
		t.Fatalf("the two orders end in different states:\n%s", lineDiff(digests[0], digests[1]))
	}
	return states[0]
}

func reversedRecs(rs []*record.Record) []*record.Record {
	r := slices.Clone(rs)
	slices.Reverse(r)
	return r
}

// revokeFixture: a user-mode scope and account alice holding u0
// (registered by the developer) and u1 (added by u0).
func revokeFixture(t *testing.T) (scope string, dev, u0, u1 *record.PrivateKey, setup []*record.Record) {
	dev, u0, u1 = key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519)
	sb := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}}
	rand.Read(sb.Nonce[:])
	scope = sb.ScopeID()
	c0, c1 := record.KeyCredential(u0.Public()), record.KeyCredential(u1.Public())
	setup = []*record.Record{
		must(record.Sign(record.ScopeCreate, sb.Marshal(), dev)),
		must(record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "alice", Time: 1, Credential: &c0}).Marshal(), dev)),
		must(record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "alice", Credential: c1}).Marshal(), u0)),
	}
	return
}

func revokeRec(scope string, by, target *record.PrivateKey) *record.Record {
	id := target.Public().ID()
	return must(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: "alice", CredentialID: id[:]}).Marshal(), by))
}

func wantLive(t *testing.T, s State, scope string, k *record.PrivateKey, want bool, what string) {
	t.Helper()
	id := k.Public().ID()
	live, err := s.Live(context.Background(), scope, "alice", id[:])
	if err != nil || live != want {
		t.Fatalf("%s: live %v (%v), want %v", what, live, err, want)
	}
}

// TestMutualRevocationBothOrders: two credentials revoking each other
// revoke both, in either order (before, the second revocation was refused
// because its signer was revoked: the nodes disagreed for good).
func TestMutualRevocationBothOrders(t *testing.T) {
	scope, _, u0, u1, setup := revokeFixture(t)
	s := bothOrders(t, setup, []*record.Record{revokeRec(scope, u0, u1), revokeRec(scope, u1, u0)})
	wantLive(t, s, scope, u0, false, "u0")
	wantLive(t, s, scope, u1, false, "u1")
}

// TestThiefLosesEverything: a thief holding u1 revokes u0, adds a key of
// its own and makes a session; alice's revocation of u1 (signed by u0,
// revoked by then in one order) applies in both orders, and the thief's
// key and session die with u1.
func TestThiefLosesEverything(t *testing.T) {
	scope, _, u0, u1, setup := revokeFixture(t)
	thief := key(t, record.Ed25519)
	sk := key(t, record.Ed25519)
	tc := record.KeyCredential(thief.Public())
	sess := &record.SessionCreateBody{Scope: scope, Account: "alice", Key: sk.Public(), Issued: 1, Expiry: 2}
	s := bothOrders(t, setup, []*record.Record{
		revokeRec(scope, u1, u0),
		must(record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "alice", Credential: tc}).Marshal(), u1)),
		must(record.Sign(record.SessionCreate, sess.Marshal(), u1)),
		revokeRec(scope, u0, u1),
	})
	for _, k := range []*record.PrivateKey{u0, u1, thief} {
		wantLive(t, s, scope, k, false, "after the race")
	}
	// The session's maker is dead, so its record no longer proves it.
	if _, err := s.credentialAuthority(context.Background(), must(record.Sign(record.SessionCreate, sess.Marshal(), u1)), &record.ScopeConfig{}, scope, "alice"); err == nil {
		t.Fatal("the thief's session is still backed by a live credential")
	}
}

// TestSessionRevokedByRevokedCredential: a session revoked by u1 stays
// revoked when u1 is revoked too, whichever arrives first.
func TestSessionRevokedByRevokedCredential(t *testing.T) {
	scope, _, u0, u1, setup := revokeFixture(t)
	sk := key(t, record.Ed25519)
	sess := &record.SessionCreateBody{Scope: scope, Account: "alice", Key: sk.Public(), Issued: 1, Expiry: 2}
	setup = append(setup, must(record.Sign(record.SessionCreate, sess.Marshal(), u0)))
	s := bothOrders(t, setup, []*record.Record{
		must(record.Sign(record.SessionRevoke, (&record.SessionRevokeBody{Scope: scope, Account: "alice", Session: sk.Public().ID()}).Marshal(), u1)),
		revokeRec(scope, u0, u1),
	})
	if revoked, err := s.SessionRevoked(context.Background(), scope, "alice", sk.Public().ID()); err != nil || !revoked {
		t.Fatalf("session revoked: %v %v", revoked, err)
	}
	wantLive(t, s, scope, u0, true, "u0")
}

// TestScopeUpdateTieAndRemovedKey: two updates at one seq resolve to the
// one with the lower record id in both orders, and an update by a key
// that a quorum removed at a lower seq never takes effect, whether it
// arrives before or after the removal.
func TestScopeUpdateTieAndRemovedKey(t *testing.T) {
	d0, d1 := key(t, record.Ed25519), key(t, record.Ed25519)
	cfg := func(origin string, ks ...*record.PrivateKey) record.ScopeConfig {
		c := record.ScopeConfig{RPID: testRPID, Origins: []string{origin}, Mode: record.ModeUser, SessionTTL: 3600}
		for _, k := range ks {
			c.DevKeys = append(c.DevKeys, k.Public())
		}
		return c
	}
	sb := &record.ScopeCreateBody{Config: cfg(testOrigin, d0, d1)}
	rand.Read(sb.Nonce[:])
	scope := sb.ScopeID()
	setup := []*record.Record{must(record.Sign(record.ScopeCreate, sb.Marshal(), d0))}
	up := func(seq uint64, c record.ScopeConfig, ks ...*record.PrivateKey) *record.Record {
		return must(record.SignQuorum(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: seq, Config: c}).Marshal(), ks...))
	}
	a, b := up(1, cfg("https://a", d0, d1), d0), up(1, cfg("https://b", d0, d1), d1)
	s := bothOrders(t, setup, []*record.Record{a, b})
	_, got, err := s.Scope(context.Background(), scope)
	want := a
	if id, other := applyID(a), applyID(b); string(other[:]) < string(id[:]) {
		want = b
	}
	wb, _ := record.DecodeScopeUpdate(want.Body)
	if err != nil || got.Origins[0] != wb.Config.Origins[0] {
		t.Fatalf("tie: %v %v, want %s", got.Origins, err, wb.Config.Origins[0])
	}

	// A quorum (2 of 2) removes d1 at seq 1; d1's update at seq 2 never
	// counts, in either order.
	removal := up(1, cfg("https://removed", d0), d0, d1)
	late := up(2, cfg("https://mine", d0, d1), d1) // authorized by the creation config: stored, never in effect
	s = bothOrders(t, setup, []*record.Record{removal, late})
	if seq, got, err := s.Scope(context.Background(), scope); err != nil || seq != 1 || got.Origins[0] != "https://removed" {
		t.Fatalf("removed key: seq %d %v %v", seq, got, err)
	}
}

// TestReaddCannotRehangRoot: a thief holding u1 adds alice's registered
// u0 again (a credential.add whose id may be lower than her
// registration's); u0 keeps its root origin, so revoking u1 does not take
// u0 with it, in either order.
func TestReaddCannotRehangRoot(t *testing.T) {
	scope, _, u0, u1, setup := revokeFixture(t)
	c0 := record.KeyCredential(u0.Public())
	var recs []*record.Record
	for i := range 8 { // several ids, some below the registration's
		b := &record.CredentialAddBody{Scope: scope, Account: "alice", Credential: c0}
		b.Nonce[0] = byte(i)
		recs = append(recs, must(record.Sign(record.CredentialAdd, b.Marshal(), u1)))
	}
	recs = append(recs, revokeRec(scope, u0, u1))
	s := bothOrders(t, setup, recs)
	wantLive(t, s, scope, u0, true, "u0")
	wantLive(t, s, scope, u1, false, "u1")
}
