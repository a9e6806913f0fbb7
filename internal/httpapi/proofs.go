package httpapi

import "context"

// ProofsHeader is the HTTP header that carries a request's approval proofs
// (session-key signatures, passkey assertions, developer signatures), so
// that JSON-RPC params keep their standard EIP-1193 shapes. Its format is
// package auth's; httpapi only hands it to the handlers.
const ProofsHeader = "X-Keymesh-Auth"

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
