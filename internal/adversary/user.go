//go:build keymesh_adversary

package adversary

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/wallet"
)

// User is an account of a user-mode scope whose user approves operations
// with her own key (client.UserKeySigner), as in the node's wallet tests.
type User struct {
	Scope, Account string
	signer         *client.KeySigner
	t              testing.TB
}

// NewUser creates a user-mode scope through node 1, registers account in
// it with a fresh user key, and waits until every node accepts that user's
// approvals (the records have replicated).
func (c *Cluster) NewUser(account string) *User {
	c.t.Helper()
	ctx := context.Background()
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		c.t.Fatal(err)
	}
	sc, err := c.Client(1).CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		c.t.Fatal(err)
	}
	key, err := client.GenerateKey("p256")
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Client(1).RegisterDelegated(ctx, dev, sc.ID, account, key.Public()); err != nil {
		c.t.Fatal(err)
	}
	u := &User{Scope: sc.ID, Account: account, signer: client.UserKeySigner(key, sc.ID, account), t: c.t}
	for id := uint16(1); int(id) <= c.N(); id++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var out []string
			err := c.Client(id).Call(client.WithProofs(ctx, u.Approve(api.MethodAccounts, common.Address{}, [32]byte{})), api.MethodAccounts, nil, &out)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("adversary: user records on node %d: not within 10 s: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return u
}

// Approve returns fresh proofs (an X-Keymesh-Auth value) for method over
// (addr, digest).
func (u *User) Approve(method string, addr common.Address, digest [32]byte) string {
	u.t.Helper()
	h, err := u.signer.Approve(context.Background(), client.Operation{Scope: u.Scope, Account: u.Account, Method: method, Hash: api.OperationHash(method, addr, digest)})
	if err != nil {
		u.t.Fatal(err)
	}
	return h
}

// Request is a signing request as a client sends it to its gateway: the
// method, its JSON params and the user's approval of exactly that
// operation. A malicious gateway receives it and may do with it what it
// likes; the other nodes check the approval themselves.
type Request struct {
	Method string
	Params json.RawMessage
	Proofs string
	// Address and Digest are what the params sign (wallet.Prepare), as
	// every node computes them.
	Address common.Address
	Digest  [32]byte
}

// ApproveSign has the user approve method with params (marshalled to JSON)
// and returns the request a client would send.
func (u *User) ApproveSign(method string, params any) *Request {
	u.t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		u.t.Fatal(err)
	}
	p, err := wallet.Prepare(method, raw, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return &Request{Method: method, Params: raw, Proofs: u.Approve(method, p.Address, p.Digest), Address: p.Address, Digest: p.Digest}
}

// ApproveCreate returns proofs approving a key generation for the user
// (keymesh_createAccount).
func (u *User) ApproveCreate() string {
	return u.Approve(api.MethodCreateAccount, common.Address{}, [32]byte{})
}

// CreateWallet has the user create a key through node via's public API (an
// honest gateway's key generation among all n nodes) and returns its
// address.
func (c *Cluster) CreateWallet(via uint16, u *User) common.Address {
	c.t.Helper()
	var res api.CreateAccountResult
	ctx := client.WithProofs(context.Background(), u.ApproveCreate())
	if err := c.Client(via).Call(ctx, api.MethodCreateAccount, api.CreateAccountParams{Scope: u.Scope, Account: u.Account}, &res); err != nil {
		c.t.Fatalf("adversary: createAccount via node %d: %v", via, err)
	}
	return common.HexToAddress(res.Address)
}

// Call sends one JSON-RPC request to node id's public API with proofs as
// its X-Keymesh-Auth header (empty: none), as any client could, for
// example to replay a header a client sent to another gateway.
func (c *Cluster) Call(id uint16, proofs, method string, params, result any) error {
	ctx := context.Background()
	if proofs != "" {
		ctx = client.WithProofs(ctx, proofs)
	}
	return c.Client(id).Call(ctx, method, params, result)
}
