package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/record"
)

// revocationCluster starts a 3-node cluster with a user-mode scope and
// account alice holding two plain-key credentials, u0 (registered) and
// u1 (added by u0), and returns the submitted records' signers.
func revocationCluster(t *testing.T) (*testCluster, string, *record.PrivateKey, *record.PrivateKey) {
	t.Helper()
	tc := newTestCluster(t)
	ctx := context.Background()
	dev, _ := record.GenerateKey(record.Ed25519)
	u0, _ := record.GenerateKey(record.Ed25519)
	u1, _ := record.GenerateKey(record.Ed25519)
	sb := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}}
	rand.Read(sb.Nonce[:])
	scope := sb.ScopeID()
	c0, c1 := record.KeyCredential(u0.Public()), record.KeyCredential(u1.Public())
	rb := &record.AccountRegisterBody{Scope: scope, Account: "alice", Time: time.Now().Unix(), Credential: &c0}
	rand.Read(rb.Nonce[:])
	ab := &record.CredentialAddBody{Scope: scope, Account: "alice", Credential: c1}
	rand.Read(ab.Nonce[:])
	for _, r := range []*record.Record{
		signed(record.Sign(record.ScopeCreate, sb.Marshal(), dev)),
		signed(record.Sign(record.AccountRegister, rb.Marshal(), dev)),
		signed(record.Sign(record.CredentialAdd, ab.Marshal(), u0)),
	} {
		if err := tc.nodes[0].Auth().SubmitRecord(ctx, r); err != nil {
			t.Fatalf("%s: %v", r.Kind, err)
		}
	}
	for _, n := range tc.nodes {
		eventually(t, "alice's two credentials on every node", func() error {
			cs, err := n.Auth().State().Credentials(ctx, scope, "alice")
			if err != nil || len(cs) != 2 {
				return fmt.Errorf("node %d: %d credentials, %v", n.ID(), len(cs), err)
			}
			return nil
		})
	}
	return tc, scope, u0, u1
}

func signed(r *record.Record, err error) *record.Record {
	if err != nil {
		panic(err)
	}
	return r
}

func revoke(scope string, by, target *record.PrivateKey) *record.Record {
	id := target.Public().ID()
	return signed(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: "alice", CredentialID: id[:]}).Marshal(), by))
}

// bothRevoked waits until no node counts any credential as alice's (she
// has only u0 and u1).
func bothRevoked(t *testing.T, tc *testCluster, scope string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range tc.nodes {
		eventually(t, "both credentials revoked on every node", func() error {
			cs, err := n.Auth().State().Credentials(ctx, scope, "alice")
			if err != nil || len(cs) != 0 {
				return fmt.Errorf("node %d: %d credentials still approve (%v)", n.ID(), len(cs), err)
			}
			return nil
		})
	}
}

// TestMutualRevocation: alice's two credentials revoke each other at the
// same moment through two gateways. Both revocations are acknowledged
// (each is signed by a credential registered to alice, whatever happened
// to it since), and every node ends with both revoked.
func TestMutualRevocation(t *testing.T) {
	tc, scope, u0, u1 := revocationCluster(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = tc.nodes[0].Auth().SubmitRecord(ctx, revoke(scope, u0, u1)) })
	wg.Go(func() { errs[1] = tc.nodes[2].Auth().SubmitRecord(ctx, revoke(scope, u1, u0)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("revocation %d: %v", i, err)
		}
	}
	bothRevoked(t, tc, scope)
}

// TestStolenCredentialRace: a thief holding alice's credential u1
// revokes her u0 first, while node 3 is down. Alice's revocation of u1,
// signed by u0 (revoked by then on nodes 1 and 2), is still acknowledged,
// and node 3, catching up, gets both. Every node ends with both
// credentials revoked: the thief keeps nothing.
func TestStolenCredentialRace(t *testing.T) {
	tc, scope, u0, u1 := revocationCluster(t)
	ctx := context.Background()
	tc.stop(2)
	if err := tc.nodes[0].Auth().SubmitRecord(ctx, revoke(scope, u1, u0)); err != nil {
		t.Fatalf("thief's revocation: %v", err)
	}
	if err := tc.nodes[1].Auth().SubmitRecord(ctx, revoke(scope, u0, u1)); err != nil {
		t.Fatalf("alice's revocation after the thief's: %v", err)
	}
	tc.restart(2)
	bothRevoked(t, tc, scope)
}
