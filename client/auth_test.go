package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// authNode serves a real auth.Service (SQLite store) over the real
// JSON-RPC handler.
func authNode(t *testing.T) (*auth.Service, *client.Client) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc, err := auth.New(auth.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	reg := httpapi.NewRegistry()
	auth.Register(reg, svc)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c
}

func apiCode(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func authOp(scope, account string, n byte) (client.Operation, auth.Operation) {
	op := client.Operation{Scope: scope, Account: account, Method: api.MethodPersonalSign}
	op.Hash[0] = n
	aop := auth.Operation{Scope: scope, Account: account, Method: op.Method, Hash: op.Hash}
	aop.Request[0] = n
	return op, aop
}

func TestDeveloperOwnedAuth(t *testing.T) {
	ctx := context.Background()
	svc, c := authNode(t)
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", dev, dev, dev, dev); strings.Contains(s, dev.MarshalPrivate()[len("ed25519:"):]) {
		t.Fatal("key printed its secret")
	}
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "developer", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetScope(ctx, sc.ID)
	if err != nil || got.Mode != "developer" || got.DevKeys[0] != dev.Public() || got.AllowRawDigest {
		t.Fatalf("GetScope: %+v %v", got, err)
	}
	if svc.AllowsRawDigest(ctx, sc.ID) {
		t.Fatal("a scope created without AllowRawDigest allows raw digests")
	}
	user, _ := client.GenerateKey("p256")
	if _, err := c.RegisterDelegated(ctx, dev, sc.ID, "user-1", user.Public()); err != nil {
		t.Fatal(err)
	}
	// The Passport alias reaches the same method; the account exists now.
	p, _ := client.DelegatedRegistrationRecord(dev, sc.ID, sc.Seq, "user-1", "")
	err = c.Call(ctx, "delegatedRegistration", p, nil)
	if apiCode(err) != api.CodeAuthConflict {
		t.Fatalf("second registration of user-1: %v", err)
	}

	op, aop := authOp(sc.ID, "user-1", 1)
	h, err := client.DeveloperSigner(dev, sc.ID).Approve(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	if pr, err := svc.Authorize(ctx, aop, h); err != nil || pr.Account != "user-1" {
		t.Fatalf("DOA approval: %+v %v", pr, err)
	}
	// The user's key alone does not satisfy developer mode.
	h, _ = client.UserKeySigner(user, sc.ID, "user-1").Approve(ctx, op)
	if _, err := svc.Authorize(ctx, aop, h); apiCode(err) != api.CodeAuthIncomplete {
		t.Fatalf("user key in developer mode: %v", err)
	}
	// Switch the scope to hybrid, allowing raw digests: both together pass.
	upd, err := c.UpdateScope(ctx, dev, sc.ID, 1, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "hybrid", SessionTTL: time.Hour, AllowRawDigest: true})
	if err != nil || !upd.AllowRawDigest {
		t.Fatalf("UpdateScope: %+v %v", upd, err)
	}
	if got, err := c.GetScope(ctx, sc.ID); err != nil || !got.AllowRawDigest || got.Seq != 1 {
		t.Fatalf("GetScope after the update: %+v %v", got, err)
	}
	if !svc.AllowsRawDigest(ctx, sc.ID) || svc.AllowsRawDigest(ctx, strings.Repeat("0", 32)) {
		t.Fatal("AllowsRawDigest: want the updated scope only")
	}
	_, aop = authOp(sc.ID, "user-1", 2)
	op.Hash = aop.Hash
	h, _ = client.HybridApprover(client.UserKeySigner(user, sc.ID, "user-1"), client.DeveloperSigner(dev, sc.ID)).Approve(ctx, op)
	if _, err := svc.Authorize(ctx, aop, h); err != nil {
		t.Fatalf("hybrid: %v", err)
	}
}

func TestSessionApprove(t *testing.T) {
	ctx := context.Background()
	svc, c := authNode(t)
	dev, _ := client.GenerateKey("p256")
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost:1"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Passkey registration and authentication through the JSON-RPC API
	// (Passport's aliases), with a software authenticator in place of the
	// browser (the browser test in internal/node uses real Chromium).
	pk := authtest.New("localhost", "http://localhost:1")
	regKey, _ := client.GenerateKey("p256")
	alice := client.DerivedAccountID(regKey) // a self-registration's id is its registration key's
	var init api.InitiateResult
	if err := c.Call(ctx, "initiateRegistration", api.InitiateRegistrationParams{Scope: sc.ID, Account: alice, RegistrationKey: regKey.Public()}, &init); err != nil {
		t.Fatal(err)
	}
	ch, _ := base64.RawURLEncoding.DecodeString(init.Challenge)
	if _, err := c.CompleteKeyedRegistration(ctx, &init, pk.Create(ch), regKey); err != nil {
		t.Fatal(err)
	}
	sk, _ := client.GenerateKey("p256")
	ia, err := c.InitiateAuthentication(ctx, sc.ID, alice, sk.Public())
	if err != nil {
		t.Fatal(err)
	}
	ch, _ = base64.RawURLEncoding.DecodeString(ia.Challenge)
	as, err := c.CompleteAuthentication(ctx, ia.ChallengeID, pk.Get(ch))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := client.GenerateKey("p256")
	if _, err := client.NewSession(other, as); err == nil {
		t.Fatal("NewSession accepted a session for another key")
	}
	sess, err := client.NewSession(sk, as)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Account != alice || time.Until(sess.Expiry) < 59*time.Minute {
		t.Fatalf("session %+v", sess)
	}
	op, aop := authOp(sc.ID, alice, 1)
	h, err := sess.Approve(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authorize(ctx, aop, h); err != nil {
		t.Fatal(err)
	}
	// Each Approve is a fresh approval: a second one for a new request passes.
	h2, _ := sess.Approve(ctx, op)
	aop.Request[1] = 1
	if _, err := svc.Authorize(ctx, aop, h2); err != nil {
		t.Fatal(err)
	}
	// The first one again, for the new request, is a replay.
	if _, err := svc.Authorize(ctx, aop, h); apiCode(err) != api.CodeAuthReplay {
		t.Fatalf("replay: %v", err)
	}
	// Log out: the session key revokes itself; no node accepts it then.
	if err := sess.Revoke(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, aop = authOp(sc.ID, alice, 3)
	op.Hash = aop.Hash
	h, _ = sess.Approve(ctx, op)
	if _, err := svc.Authorize(ctx, aop, h); apiCode(err) != api.CodeAuthRevoked || !strings.Contains(err.Error(), "session") {
		t.Fatalf("revoked session: %v", err)
	}
	// The developer revokes the passkey: no new session can be made.
	if err := c.RevokeCredential(ctx, dev, sc.ID, alice, base64.RawURLEncoding.EncodeToString(pk.ID)); err != nil {
		t.Fatal(err)
	}
	// (The node answers like for any account, with a decoy credential id,
	// so that the answer does not tell whether the account has a passkey;
	// the revoked one is not offered.)
	if ia, err := c.InitiateAuthentication(ctx, sc.ID, alice, sk.Public()); err != nil || slices.Contains(ia.AllowCredentials, base64.RawURLEncoding.EncodeToString(pk.ID)) {
		t.Fatalf("login with a revoked passkey: %v", err)
	}
	// A session refuses to approve for another account.
	if _, err := sess.Approve(ctx, client.Operation{Scope: sc.ID, Account: "bob", Method: "personal_sign"}); err == nil {
		t.Fatal("approved for another account")
	}
}
