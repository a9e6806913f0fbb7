package auth

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestAuthorizeSealed plays a node that has not received a scope yet and a
// client (or gateway) that seals a request for another scope: the
// mismatch is refused before auth is asked (nothing is caught up, no
// approval spent); an unknown scope is caught up once and authorized on
// the second try; without catch-up it stays unknown.
func TestAuthorizeSealed(t *testing.T) {
	ahead := newEnv(t)
	ctx := context.Background()
	scope, dev := ahead.scope(record.ModeDeveloper, record.Ed25519)
	b := &record.AccountRegisterBody{Scope: scope, Account: "user-1", Time: ahead.clock.now().Unix()}
	rand.Read(b.Nonce[:])
	reg, err := record.Sign(record.AccountRegister, b.Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ahead.svc.DelegatedRegistration(ctx, api.SignedRecord{Record: b64.EncodeToString(reg.Marshal())}); err != nil {
		t.Fatal(err)
	}

	behindStore := openStore(t)
	behind, err := New(Options{Store: behindStore, Now: ahead.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	catchUps := 0
	catchUp := func(ctx context.Context) error {
		catchUps++
		for _, rec := range [][]byte{ahead.created[scope], reg.Marshal()} {
			if err := behindStore.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec) }); err != nil {
				return err
			}
		}
		return nil
	}
	o := op(scope, "user-1", 1)
	proofs := header(devProof(t, dev, scope, "user-1", o, ahead.clock.now()))

	_, err = AuthorizeSealed(httpapi.WithSealedScope(ctx, "0123456789abcdef0123456789abcdef"), behind, catchUp, o, proofs)
	wantCode(t, err, api.CodeAuthWrongScope, "sealed for another scope")
	if catchUps != 0 {
		t.Fatal("a request sealed for another scope made the node catch up (auth was asked)")
	}
	_, err = AuthorizeSealed(ctx, behind, nil, o, proofs)
	wantCode(t, err, api.CodeAuthUnknown, "unknown scope without catch-up")

	pr, err := AuthorizeSealed(httpapi.WithSealedScope(ctx, scope), behind, catchUp, o, proofs)
	if err != nil || pr.Scope != scope || pr.Account != "user-1" || catchUps != 1 {
		t.Fatalf("after catch-up: %+v %v (%d catch-ups)", pr, err, catchUps)
	}
	// The approval's nonce is spent: the same proofs for another request
	// are a replay, and a replay is not a reason to catch up.
	again := o
	again.Request[0]++
	_, err = AuthorizeSealed(ctx, behind, catchUp, again, proofs)
	wantCode(t, err, api.CodeAuthReplay, "replayed approval")
	if catchUps != 1 {
		t.Fatalf("%d catch-ups, want 1", catchUps)
	}

	// An operation whose params name no scope is held to the scope its
	// approvals speak for (the Principal).
	other := fixedPrincipal{Principal{Scope: scope, Account: "user-1"}}
	_, err = AuthorizeSealed(httpapi.WithSealedScope(ctx, "0123456789abcdef0123456789abcdef"), other, nil, Operation{Method: api.MethodCreateAccount}, proofs)
	wantCode(t, err, api.CodeAuthWrongScope, "approvals for another scope than the sealed one")
	if pr, err := AuthorizeSealed(httpapi.WithSealedScope(ctx, scope), other, nil, Operation{Method: api.MethodCreateAccount}, proofs); err != nil || pr.Scope != scope {
		t.Fatalf("approvals for the sealed scope: %+v %v", pr, err)
	}
}

// fixedPrincipal is an Authorizer that approves everything for one
// principal: it stands for an authorizer whose answer names the scope.
type fixedPrincipal struct{ p Principal }

func (f fixedPrincipal) Authorize(context.Context, Operation, string) (Principal, error) {
	return f.p, nil
}
