package wallet

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// countingAuth counts the Authorize calls that reach the authorizer under it.
type countingAuth struct {
	Authorizer
	calls atomic.Int32
}

func (c *countingAuth) Authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	c.calls.Add(1)
	return c.Authorizer.Authorize(ctx, op, proofs)
}

// TestSealedScopeMismatch: a request sealed for one scope cannot act in
// another: with the operation's scope known, the gateway refuses with
// CodeAuthWrongScope before auth sees (and spends) the approvals; with it
// unknown (keymesh_createAccount without a scope), by the approvals' scope.
// A request sealed for the operation's scope, or a plaintext one, passes.
func TestSealedScopeMismatch(t *testing.T) {
	fa := &fakeAuth{}
	alice := fa.newUser("app", "alice")
	ca := &countingAuth{Authorizer: fa}
	s := &Service{auth: ca, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	addr := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	var digest [32]byte
	digest[0] = 7
	hash := api.OperationHash(api.MethodPersonalSign, addr, digest)
	op := auth.Operation{Scope: "app", Account: "alice", Method: api.MethodPersonalSign, Hash: hash}
	proofs := alice.approve(api.MethodPersonalSign, hash)

	wantCode := func(name string, err error, code int) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != code {
			t.Fatalf("%s: %v, want code %d", name, err, code)
		}
	}

	_, err := s.authorizeOp(httpapi.WithSealedScope(ctx, "other"), op, proofs)
	wantCode("sealed for another scope", err, api.CodeAuthWrongScope)
	if n := ca.calls.Load(); n != 0 {
		t.Fatalf("auth was asked %d times about a request sealed for another scope", n)
	}

	for name, c := range map[string]context.Context{
		"sealed for the operation's scope": httpapi.WithSealedScope(ctx, "app"),
		"plaintext":                        ctx,
	} {
		pr, err := s.authorizeOp(c, op, proofs)
		if err != nil || pr.Scope != "app" || pr.Account != "alice" {
			t.Fatalf("%s: %+v, %v", name, pr, err)
		}
	}

	// The scope is known only from the approvals: createAccount with no
	// scope param (fake proofs name no scope auth can read ahead).
	create := createOp("", "", [requestLen]byte{})
	cp := alice.approve(api.MethodCreateAccount, create.Hash)
	before := ca.calls.Load()
	_, err = s.authorizeCreate(httpapi.WithSealedScope(ctx, "other"), "", "", [requestLen]byte{}, cp)
	wantCode("createAccount sealed for another scope", err, api.CodeAuthWrongScope)
	if ca.calls.Load() != before+1 {
		t.Fatal("createAccount without a scope was not checked against the approvals' scope")
	}
	if pr, err := s.authorizeCreate(httpapi.WithSealedScope(ctx, "app"), "", "", [requestLen]byte{}, cp); err != nil || pr.Scope != "app" {
		t.Fatalf("createAccount sealed for its scope: %+v, %v", pr, err)
	}
	// And with the scope param: refused before auth.
	before = ca.calls.Load()
	_, err = s.authorizeCreate(httpapi.WithSealedScope(ctx, "other"), "app", "alice", [requestLen]byte{}, alice.approve(api.MethodCreateAccount, createOp("app", "alice", [requestLen]byte{}).Hash))
	wantCode("createAccount(app) sealed for another scope", err, api.CodeAuthWrongScope)
	if ca.calls.Load() != before {
		t.Fatal("auth was asked about createAccount in a scope the request was not sealed for")
	}
}
