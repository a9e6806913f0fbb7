package wallet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
)

// fakeAuth is a stand-in Authorizer for the wallet's own tests, named as
// such: an approval is an Ed25519 signature by the account's key over the
// operation (scope, account, method, hash), the shape auth's session-key
// approvals have. It lets these tests cover the wallet's orchestration
// (every signer asks, forged and swapped operations are refused) without
// the scope/registration records of package auth.
type fakeAuth struct {
	mu   sync.Mutex
	keys map[string]ed25519.PublicKey // scope/account → key
}

type fakeApproval struct {
	Scope, Account, Method string
	Hash                   [32]byte
	Sig                    []byte
}

func fakeMessage(scope, account, method string, hash [32]byte) []byte {
	h := sha256.New()
	for _, s := range []string{"fake-approval", scope, account, method} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(hash[:])
	return h.Sum(nil)
}

// user is an account holder with its approval key.
type user struct {
	scope, account string
	key            ed25519.PrivateKey
}

func (f *fakeAuth) newUser(scope, account string) *user {
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]ed25519.PublicKey{}
	}
	f.keys[scope+"/"+account] = pub
	return &user{scope: scope, account: account, key: priv}
}

// approve returns the proofs header approving one operation.
func (u *user) approve(method string, hash [32]byte) string {
	a := fakeApproval{Scope: u.scope, Account: u.account, Method: method, Hash: hash,
		Sig: ed25519.Sign(u.key, fakeMessage(u.scope, u.account, method, hash))}
	b, _ := json.Marshal(a)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (f *fakeAuth) Authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	var a fakeApproval
	raw, err := base64.RawURLEncoding.DecodeString(proofs)
	if err != nil || json.Unmarshal(raw, &a) != nil {
		return auth.Principal{}, api.Errorf(api.CodeUnauthorized, "no valid approval")
	}
	f.mu.Lock()
	pub := f.keys[a.Scope+"/"+a.Account]
	f.mu.Unlock()
	switch {
	case pub == nil:
		return auth.Principal{}, api.Errorf(api.CodeNotFound, "unknown account")
	case op.Scope != "" && op.Scope != a.Scope || op.Account != "" && op.Account != a.Account:
		return auth.Principal{}, api.Errorf(api.CodeUnauthorized, "approval for another account")
	case op.Method != a.Method || op.Hash != a.Hash:
		return auth.Principal{}, api.Errorf(api.CodeUnauthorized, "approval signed over another operation")
	case !ed25519.Verify(pub, fakeMessage(a.Scope, a.Account, a.Method, a.Hash), a.Sig):
		return auth.Principal{}, api.Errorf(api.CodeUnauthorized, "bad approval signature")
	}
	return auth.Principal{Scope: a.Scope, Account: a.Account}, nil
}
