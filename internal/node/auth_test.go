package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

const authOrigin = "http://localhost:7100"

func apiCode(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// passkeyLogin registers an account (its id is its registration key's:
// the session's Account; account only names the user) with a software authenticator (a test
// double for the browser; TestPasskeyBrowser uses real Chromium) and
// authenticates, through c's JSON-RPC API, returning the session.
func passkeyLogin(t *testing.T, c *client.Client, scope, account string) *client.Session {
	return passkeyLoginThen(t, c, scope, account, nil)
}

// passkeyLoginThen is passkeyLogin calling between (if not nil) after the
// registration is initiated and before it is completed.
func passkeyLoginThen(t *testing.T, c *client.Client, scope, account string, between func()) *client.Session {
	t.Helper()
	ctx := context.Background()
	pk := authtest.New("localhost", authOrigin)
	// A self-registration's account id is its registration key's: account
	// names the test's user only (the session's Account is the id).
	regKey, _ := client.GenerateKey("p256")
	account = client.DerivedAccountID(regKey)
	init, err := c.InitiateKeyedRegistration(ctx, scope, account, regKey)
	if err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	ch, _ := base64.RawURLEncoding.DecodeString(init.Challenge)
	if _, err := c.CompleteKeyedRegistration(ctx, init, pk.Create(ch), regKey); err != nil {
		t.Fatal(err)
	}
	sk, _ := client.GenerateKey("p256")
	ia, err := c.InitiateAuthentication(ctx, scope, account, sk.Public())
	if err != nil {
		t.Fatal(err)
	}
	ch, _ = base64.RawURLEncoding.DecodeString(ia.Challenge)
	as, err := c.CompleteAuthentication(ctx, ia.ChallengeID, pk.Get(ch))
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.NewSession(sk, as)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newOp(scope, account string) (client.Operation, auth.Operation) {
	op := auth.Operation{Scope: scope, Account: account, Method: api.MethodPersonalSign}
	rand.Read(op.Hash[:])
	rand.Read(op.Request[:])
	return client.Operation{Scope: scope, Account: account, Method: op.Method, Hash: op.Hash}, op
}

func hasAccount(n *Node, scope, account string) error {
	ok, err := n.Auth().State().HasAccount(context.Background(), scope, account)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("node %d has no account %s", n.ID(), account)
	}
	return nil
}

// TestAuthReplicated: scope, registration and session records reach every
// node of a real 3-node cluster, and every node authorises the same
// operations itself; a record forged by one node is refused by the others;
// a node stopped during a registration catches up when restarted and then
// authorises the same operations as the others.
func TestAuthReplicated(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	dev, _ := client.GenerateKey("ed25519")
	sc, err := tc.clients[0].CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		eventually(t, "scope on every node", func() error {
			_, _, err := n.Auth().State().Scope(ctx, sc.ID)
			return err
		})
	}

	t.Run("every node authorises", func(t *testing.T) {
		sess := passkeyLogin(t, tc.clients[1], sc.ID, "alice")
		cop, op := newOp(sc.ID, sess.Account)
		h, err := sess.Approve(ctx, cop)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tc.nodes {
			eventually(t, "account on every node", func() error { return hasAccount(n, sc.ID, sess.Account) })
			// The gateway forwards the same proofs to every signer: each
			// checks them itself (same request: not a replay).
			if _, err := n.Auth().Authorize(ctx, op, h); err != nil {
				t.Fatalf("node %d: %v", n.ID(), err)
			}
		}
		// Another request reusing the approval is a replay on any node.
		op.Request[0] ^= 1
		if _, err := tc.nodes[2].Auth().Authorize(ctx, op, h); apiCode(err) != api.CodeAuthReplay {
			t.Fatalf("replay on node 3: %v", err)
		}
	})

	t.Run("forged record refused by the others", func(t *testing.T) {
		// Node 1 turns gateway-forger: it inserts an account it did not
		// receive signed (signed by its own key, not the developer's), and
		// a credential for alice that alice never authorised.
		forger := tc.nodes[0]
		mkey, _ := record.GenerateKey(record.P256)
		cred := record.KeyCredential(mkey.Public())
		acct, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: sc.ID, Account: "mallory", Time: time.Now().Unix(), Credential: &cred}).Marshal(), mkey)
		credAdd, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: sc.ID, Account: "alice", Credential: cred}).Marshal(), mkey)
		unsigned := &record.Record{Kind: record.AccountRegister, Body: (&record.AccountRegisterBody{Scope: sc.ID, Account: "eve", Time: time.Now().Unix(), Credential: &cred}).Marshal(),
			Auth: record.Auth{Kind: record.AuthSignature, Signer: mustPublic(t, dev), Sig: make([]byte, 64)}}
		for _, r := range []*record.Record{acct, credAdd, unsigned} {
			rec := r.Marshal()
			// Pushed straight to the peers (wire: version 1 ‖ record)...
			for _, peer := range []uint16{2, 3} {
				_, err := forger.Transport().Call(ctx, peer, "replica.push", append([]byte{1}, rec...))
				var re *transport.RemoteError
				if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") || !strings.Contains(re.Message, "auth: "+r.Kind.String()) {
					t.Fatalf("peer %d stored a forged %s: %v", peer, r.Kind, err)
				}
			}
			// ...and slipped into the forger's own log for catch-up.
			if err := forger.Store().Update(ctx, func(tx store.Ops) error {
				_, err := tx.Append(ctx, replica.LogStream, rec)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range tc.nodes[1:] {
			if err := n.Replica().CatchUp(ctx); err != nil {
				t.Fatalf("node %d catch-up: %v", n.ID(), err)
			}
		}
		for _, n := range tc.nodes[1:] {
			for _, who := range []string{"mallory", "eve"} {
				if hasAccount(n, sc.ID, who) == nil {
					t.Fatalf("node %d accepted forged account %s", n.ID(), who)
				}
			}
			// The forged credential does not approve for alice.
			cop, op := newOp(sc.ID, "alice")
			a := &record.Approval{Scope: sc.ID, Account: "alice", Method: cop.Method, Hash: cop.Hash, Expiry: time.Now().Add(time.Minute).Unix()}
			rand.Read(a.Nonce[:])
			sig, _ := mkey.Sign(a.SigningMessage())
			h := client.Proofs(client.Proof{Approval: base64.RawURLEncoding.EncodeToString(a.Marshal()), Key: mkey.Public().String(), Sig: base64.RawURLEncoding.EncodeToString(sig)})
			if _, err := n.Auth().Authorize(ctx, op, h); apiCode(err) != api.CodeAuthUnknown {
				t.Fatalf("node %d: forged credential: %v", n.ID(), err)
			}
		}
	})

	t.Run("stopped node catches up", func(t *testing.T) {
		// Node 3 stops during the registration (after it is initiated);
		// it completes, and the login follows, on the 2 of 3 nodes that are
		// the write quorum.
		sess := passkeyLoginThen(t, tc.clients[0], sc.ID, "bob", func() { tc.stop(2) })
		if hasAccount(tc.nodes[1], sc.ID, sess.Account) != nil {
			t.Fatal("quorum write did not reach node 2")
		}
		tc.restart(2)
		eventually(t, "node 3 catches up", func() error { return hasAccount(tc.nodes[2], sc.ID, sess.Account) })
		cop, op := newOp(sc.ID, sess.Account)
		h, _ := sess.Approve(ctx, cop)
		for _, n := range tc.nodes {
			if _, err := n.Auth().Authorize(ctx, op, h); err != nil {
				t.Fatalf("node %d after catch-up: %v", n.ID(), err)
			}
		}
	})
}

func mustPublic(t *testing.T, k *client.Key) record.PublicKey {
	p, err := record.ParsePublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
