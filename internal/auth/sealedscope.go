package auth

import (
	"context"
	"errors"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// Authorizer answers whether proofs approve op: *Service, or a stand-in
// in a service's own tests.
type Authorizer interface {
	Authorize(ctx context.Context, op Operation, proofs string) (Principal, error)
}

// AuthorizeSealed is how a service authorizes an operation on an account,
// as gateway and as co-signer: a.Authorize, with two rules around it that
// every service needs.
//
// A sealed request is bound by its client to one scope (the envelope's
// AAD, httpapi.SealedScope): an operation in another scope is refused with
// api.CodeAuthWrongScope, before a is asked (and spends the approvals)
// when op.Scope is set, and by the scope the approvals speak for
// (Principal.Scope) when it is not (an operation whose params name no
// scope). A plaintext request, or a peer's invitation, carries no sealed
// scope and passes this check.
//
// When a answers api.CodeAuthUnknown (this node does not know the scope or
// account yet) and catchUp is not nil, catchUp is called (replica.CatchUp:
// a record written with a quorum of n−t+1 nodes may not have reached this
// node) and a is asked once more; catchUp's own error is not returned,
// the second answer is. The caller logs if it wants to (a library does
// not).
func AuthorizeSealed(ctx context.Context, a Authorizer, catchUp func(context.Context) error, op Operation, proofs string) (Principal, error) {
	sealed := httpapi.SealedScope(ctx)
	if err := sealedScopeMatches(sealed, op.Method, op.Scope); err != nil {
		return Principal{}, err
	}
	pr, err := a.Authorize(ctx, op, proofs)
	var ae *api.Error
	if err != nil && catchUp != nil && errors.As(err, &ae) && ae.Code == api.CodeAuthUnknown {
		_ = catchUp(ctx) // whether it helped is the second answer
		pr, err = a.Authorize(ctx, op, proofs)
	}
	if err != nil {
		return pr, err
	}
	if err := sealedScopeMatches(sealed, op.Method, pr.Scope); err != nil {
		return Principal{}, err
	}
	return pr, nil
}

// sealedScopeMatches refuses an operation in scope when the request was
// sealed for another scope. An empty sealed scope (a plaintext request, or
// a peer's invitation) or an unknown operation scope is no mismatch.
func sealedScopeMatches(sealed, method, scope string) error {
	if sealed == "" || scope == "" || sealed == scope {
		return nil
	}
	return api.Errorf(api.CodeAuthWrongScope, "%s: the request was sealed for scope %s, not the operation's scope %s", method, sealed, scope)
}
