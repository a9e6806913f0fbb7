package httpapi

import (
	"context"

	"github.com/keymesh/keymesh/api"
)

// ProofsHeader is the HTTP header that carries a request's approval proofs
// (api.ProofsHeader). Its format is package api's (api.Proofs), checked by
// package auth; httpapi only hands it to the handlers.
const ProofsHeader = api.ProofsHeader

type proofsKey struct{}

// withProofs returns ctx carrying the request's ProofsHeader value.
func withProofs(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, proofsKey{}, v)
}

// Proofs returns the ProofsHeader value of the HTTP request being served,
// or "" when it had none.
func Proofs(ctx context.Context) string {
	v, _ := ctx.Value(proofsKey{}).(string)
	return v
}
