package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth/authtest"
)

// TestKeyedRegistration: the SDK's passkey registration with a
// registration key, through a node's JSON-RPC API, registers exactly the
// authenticator's passkey; a signature by another key is refused.
func TestKeyedRegistration(t *testing.T) {
	svc, c := authNode(t)
	ctx := context.Background()
	dev, _ := client.GenerateKey("p256")
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost:7100"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pk := authtest.New("localhost", "http://localhost:7100")
	regKey, _ := client.GenerateKey("p256")
	init, err := c.InitiateKeyedRegistration(ctx, sc.ID, "", regKey)
	if err != nil {
		t.Fatal(err)
	}
	// A chosen id is refused: anyone could take it first.
	if _, err := c.InitiateKeyedRegistration(ctx, sc.ID, "alice", regKey); apiCode(err) != api.CodeInvalidParams {
		t.Fatalf("a chosen account id: %v", err)
	}
	ch, _ := base64.RawURLEncoding.DecodeString(init.Challenge)
	other, _ := client.GenerateKey("ed25519")
	if _, err := c.CompleteKeyedRegistration(ctx, init, pk.Create(ch), other); apiCode(err) != api.CodeAuthBadProof {
		t.Fatalf("attestation signed by another key: %v", err)
	}
	init, err = c.InitiateKeyedRegistration(ctx, sc.ID, "", regKey)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ = base64.RawURLEncoding.DecodeString(init.Challenge)
	if _, err := c.CompleteKeyedRegistration(ctx, init, pk.Create(ch), regKey); err != nil {
		t.Fatal(err)
	}
	creds, err := svc.State().Credentials(ctx, sc.ID, client.DerivedAccountID(regKey))
	if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, pk.ID) {
		t.Fatalf("credentials %+v %v", creds, err)
	}
}

// TestUpdateScopeQuorum: with two developer keys (default quorum 2), one
// key alone cannot change the key set; both together can.
func TestUpdateScopeQuorum(t *testing.T) {
	_, c := authNode(t)
	ctx := context.Background()
	k1, _ := client.GenerateKey("p256")
	k2, _ := client.GenerateKey("ed25519")
	cfg := client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost:7100"}, Mode: "user", SessionTTL: time.Hour, DeveloperKeys: []string{k1.Public(), k2.Public()}}
	sc, err := c.CreateScope(ctx, k1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sc.DevQuorum != 2 {
		t.Fatalf("quorum %d", sc.DevQuorum)
	}
	only1 := cfg
	only1.DeveloperKeys = []string{k1.Public()}
	if _, err := c.UpdateScope(ctx, k1, sc.ID, 1, only1); apiCode(err) != api.CodeAuthBadProof {
		t.Fatalf("one key removing the other: %v", err)
	}
	up, err := c.UpdateScopeQuorum(ctx, []*client.Key{k1, k2}, sc.ID, 1, only1)
	if err != nil || len(up.DevKeys) != 1 || up.DevQuorum != 1 {
		t.Fatalf("both keys: %+v %v", up, err)
	}
}

// TestSetAccountMode: a delegated account with the user's key, in a user
// scope switched to developer mode, moves only when the user's key signs.
func TestSetAccountMode(t *testing.T) {
	svc, c := authNode(t)
	ctx := context.Background()
	dev, _ := client.GenerateKey("p256")
	user, _ := client.GenerateKey("ed25519")
	cfg := client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost:7100"}, Mode: "user", SessionTTL: time.Hour}
	sc, err := c.CreateScope(ctx, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterDelegated(ctx, dev, sc.ID, "u1", user.Public()); err != nil {
		t.Fatal(err)
	}
	cfg.Mode = "developer"
	if _, err := c.UpdateScope(ctx, dev, sc.ID, 1, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccountMode(ctx, dev, sc.ID, "u1", "developer", 1); apiCode(err) != api.CodeAuthBadProof {
		t.Fatalf("developer consenting for the user: %v", err)
	}
	if err := c.SetAccountMode(ctx, user, sc.ID, "u1", "developer", 1); err != nil {
		t.Fatal(err)
	}
	_, cur, _ := svc.State().Scope(ctx, sc.ID)
	if m, err := svc.State().AccountMode(ctx, sc.ID, "u1", cur); err != nil || m.String() != "developer" {
		t.Fatalf("mode %v %v", m, err)
	}
}
