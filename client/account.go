package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/ethprep"
)

// ProofsHeader is the HTTP header that carries approval proofs (the value an
// Approver returns) with a request; see WithProofs. It is api.ProofsHeader.
const ProofsHeader = api.ProofsHeader

type proofsKey struct{}

// WithProofs returns a context under which Call sends proofs in the
// X-Keymesh-Auth header (inside the sealed body once requests are sealed).
// Account does this for every wallet call; use it directly only for methods
// Account does not wrap.
func WithProofs(ctx context.Context, proofs string) context.Context {
	return context.WithValue(ctx, proofsKey{}, proofs)
}

// proofsFrom returns the proofs WithProofs put in ctx, or "".
func proofsFrom(ctx context.Context) string {
	p, _ := ctx.Value(proofsKey{}).(string)
	return p
}

// Operation is what an Approver is asked to approve: the account (scope and
// account id), the canonical method name and the operation hash that binds
// the exact payload (OperationHash).
type Operation struct {
	Scope   string
	Account string
	Method  string
	Hash    [32]byte
}

// Approver produces approval proofs: the X-Keymesh-Auth value that makes the
// nodes accept op (for example a session key's or a developer key's
// signature over it; see package auth's client session). Approve is called
// once per request, and a fresh approval (fresh nonce) must come back each
// time: the nodes refuse a replayed one.
type Approver interface {
	Approve(ctx context.Context, op Operation) (string, error)
}

// ApproverFunc adapts a function to Approver.
type ApproverFunc func(ctx context.Context, op Operation) (string, error)

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, op Operation) (string, error) { return f(ctx, op) }

// OperationTag is the domain-separation tag of OperationHash
// (api.OperationTag).
const OperationTag = api.OperationTag

// OperationHash is what an approval of a wallet request commits to: the
// canonical method name, the signing address and the digest the threshold
// key signs. It is api.OperationHash, the one definition the nodes use too
// (see there for the exact layout), so an approval authorises exactly one
// payload.
func OperationHash(method string, address common.Address, digest [32]byte) [32]byte {
	return api.OperationHash(method, address, digest)
}

// ErrBadSignature is wrapped by the errors of Account's signing methods when
// a node returns a signature that does not recover to the account's address
// (or a transaction other than the one asked for). The SDK checks every
// signature before returning it.
var ErrBadSignature = errors.New("client: the node returned a signature that does not verify")

// Account is one threshold wallet address of an account, and the approver
// that speaks for the account. Its methods sign through the cluster: the
// node that c talks to runs the signing with t−1 peers, each of which
// checks the approval itself. Every signature is verified (go-ethereum
// recovery) before it is returned. Account is safe for concurrent use if its
// Approver is.
type Account struct {
	c       *Client
	ap      Approver
	scope   string
	account string
	addr    common.Address
}

// NewAccount returns the wallet address addr of account (scope, account),
// signing through c with approvals from ap.
func NewAccount(c *Client, ap Approver, scope, account string, addr common.Address) *Account {
	return &Account{c: c, ap: ap, scope: scope, account: account, addr: addr}
}

// CreateAccount calls keymesh_createAccount: the cluster runs distributed key
// generation for a new wallet key of (scope, account), which ap must be
// allowed to approve, and returns it once all n nodes hold their share.
func CreateAccount(ctx context.Context, c *Client, ap Approver, scope, account string) (*Account, *api.CreateAccountResult, error) {
	const m = api.MethodCreateAccount
	var res api.CreateAccountResult
	params := api.CreateAccountParams{Scope: scope, Account: account}
	if err := call(ctx, c, ap, noPayload(scope, account, m), []any{params}, &res); err != nil {
		return nil, nil, err
	}
	if !common.IsHexAddress(res.Address) {
		return nil, nil, fmt.Errorf("client: %s: node returned a malformed address", m)
	}
	if res.Scope != scope || res.Account != account {
		return nil, nil, fmt.Errorf("client: %s: node created a key for another account (%s/%s)", m, res.Scope, res.Account)
	}
	return NewAccount(c, ap, scope, account, common.HexToAddress(res.Address)), &res, nil
}

// Accounts calls eth_accounts: the wallet addresses of (scope, account),
// oldest first.
func Accounts(ctx context.Context, c *Client, ap Approver, scope, account string) ([]common.Address, error) {
	const m = api.MethodAccounts
	var res []string
	if err := call(ctx, c, ap, noPayload(scope, account, m), nil, &res); err != nil {
		return nil, err
	}
	out := make([]common.Address, len(res))
	for i, s := range res {
		if !common.IsHexAddress(s) {
			return nil, fmt.Errorf("client: %s: node returned a malformed address", m)
		}
		out[i] = common.HexToAddress(s)
	}
	return out, nil
}

// noPayload is the operation of a method that signs nothing: its hash
// binds the method alone (zero address and digest).
func noPayload(scope, account, method string) Operation {
	return Operation{Scope: scope, Account: account, Method: method, Hash: OperationHash(method, common.Address{}, [32]byte{})}
}

// call asks ap to approve op and calls op.Method with the proofs.
func call(ctx context.Context, c *Client, ap Approver, op Operation, params, result any) error {
	if ap == nil {
		return fmt.Errorf("client: %s: no approver", op.Method)
	}
	proofs, err := ap.Approve(ctx, op)
	if err != nil {
		return fmt.Errorf("client: %s: approval: %w", op.Method, err)
	}
	if op.Scope != "" {
		ctx = WithScope(ctx, op.Scope) // binds a sealed call to the account's scope
	}
	return c.Call(WithProofs(ctx, proofs), op.Method, params, result)
}

// Address is the wallet's Ethereum address.
func (a *Account) Address() common.Address { return a.addr }

// Scope and ID name the account the wallet belongs to.
func (a *Account) Scope() string { return a.scope }

// ID is the account id within Scope.
func (a *Account) ID() string { return a.account }

// Client is the client the account signs through.
func (a *Account) Client() *Client { return a.c }

// Call approves the operation (method, a.Address(), digest) and calls method
// with params, decoding the result into result. It is the primitive under
// the Sign… methods, for callers that build params themselves (the CLI
// forwards a transaction file as is): digest must be what the node will
// compute from params, or the nodes refuse the approval. It does not check
// the result.
func (a *Account) Call(ctx context.Context, method string, digest [32]byte, params, result any) error {
	op := Operation{Scope: a.scope, Account: a.account, Method: method, Hash: OperationHash(method, a.addr, digest)}
	return call(ctx, a.c, a.ap, op, params, result)
}

// SignMessage signs msg with personal_sign (EIP-191: keccak256("\x19Ethereum
// Signed Message:\n" ‖ len ‖ msg)) and returns the 65-byte signature r ‖ s ‖ v
// with v ∈ {27, 28}, as wallets and ecrecover expect.
func (a *Account) SignMessage(ctx context.Context, msg []byte) ([]byte, error) {
	const m = api.MethodPersonalSign
	digest, err := ethprep.PersonalDigest(msg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var sig string
	if err := a.Call(ctx, m, digest, []string{hexutil.Encode(msg), a.addr.Hex()}, &sig); err != nil {
		return nil, err
	}
	return a.checkSig(m, sig, digest)
}

// SignTypedData signs EIP-712 typed data with eth_signTypedData_v4 and
// returns r ‖ s ‖ v, v ∈ {27, 28}. The digest is computed from td as it
// travels (JSON), which is what every node hashes: give integers beyond
// 2^53 as strings (decimal or 0x hex), never as float64 numbers.
func (a *Account) SignTypedData(ctx context.Context, td apitypes.TypedData) ([]byte, error) {
	raw, err := json.Marshal(td)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", api.MethodSignTypedDataV4, err)
	}
	return a.SignTypedDataJSON(ctx, raw)
}

// SignTypedDataJSON is SignTypedData for typed data already in JSON (as
// dapps hand it to eth_signTypedData_v4).
func (a *Account) SignTypedDataJSON(ctx context.Context, typedData []byte) ([]byte, error) {
	const m = api.MethodSignTypedDataV4
	digest, err := TypedDataHash(typedData)
	if err != nil {
		return nil, err
	}
	var sig string
	if err := a.Call(ctx, m, digest, []any{a.addr.Hex(), json.RawMessage(typedData)}, &sig); err != nil {
		return nil, err
	}
	return a.checkSig(m, sig, digest)
}

// TypedDataHash is the EIP-712 digest of typed data in JSON:
// keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message)), by
// go-ethereum's apitypes, from the JSON decoded by the rules every node
// applies (one JSON object, or a string holding one, with types and
// primaryType, no unknown members, within api.MaxTypedDataBytes). An error
// wraps the *api.Error a node would answer with.
func TypedDataHash(typedData []byte) (digest [32]byte, err error) {
	digest, err = ethprep.TypedDataHash(typedData)
	if err != nil {
		return digest, fmt.Errorf("client: %w", err)
	}
	return digest, nil
}

// SignDigest signs a raw 32-byte digest with keymesh_signDigest (only where
// the account's scope allows raw digests) and returns r ‖ s ‖ v.
func (a *Account) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	const m = api.MethodSignDigest
	var res api.SignatureResult
	params := api.SignDigestParams{Address: a.addr.Hex(), Digest: hexutil.Encode(digest[:])}
	if err := a.Call(ctx, m, digest, params, &res); err != nil {
		return nil, err
	}
	return a.checkSig(m, res.Signature, digest)
}

// SignTx signs tx (legacy with EIP-155, EIP-2930 or EIP-1559) for chainID
// with eth_signTransaction and returns the signed transaction, after checking
// that it is tx (same signing hash) and that its sender is the account.
func (a *Account) SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	const m = api.MethodSignTransaction
	req, err := TxRequest(a.addr, tx, chainID)
	if err != nil {
		return nil, err
	}
	signer := types.LatestSignerForChainID(chainID)
	digest := signer.Hash(tx)
	var raw string
	if err := a.Call(ctx, m, digest, []any{req}, &raw); err != nil {
		return nil, err
	}
	return a.checkTx(raw, signer, digest)
}

// SignTxRequest signs a transaction request as is (its From must be the
// account's address or absent: it is set) and returns the signed
// transaction. chainID comes from the request; the digest is computed
// locally from it the way the node builds the transaction.
func (a *Account) SignTxRequest(ctx context.Context, req api.TransactionRequest) (*types.Transaction, error) {
	const m = api.MethodSignTransaction
	t, err := ethprep.BuildTx(&req, nil)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	from := a.addr.Hex()
	if t.From != nil && *t.From != a.addr {
		return nil, fmt.Errorf("client: %s: from %s is not the account's address %s", m, t.From.Hex(), from)
	}
	req.From = &from
	signer, digest := t.Signer, t.Digest()
	var raw string
	if err := a.Call(ctx, m, digest, []any{req}, &raw); err != nil {
		return nil, err
	}
	return a.checkTx(raw, signer, digest)
}

// checkTx decodes a signed raw transaction and checks it against what was
// asked.
func (a *Account) checkTx(raw string, signer types.Signer, digest [32]byte) (*types.Transaction, error) {
	const m = api.MethodSignTransaction
	b, err := hexutil.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("client: %s: node returned a malformed raw transaction", m)
	}
	signed := new(types.Transaction)
	if err := signed.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("client: %s: node returned a malformed raw transaction: %v", m, err)
	}
	if signer.Hash(signed) != digest {
		return nil, fmt.Errorf("%w: %s: the signed transaction is not the one requested", ErrBadSignature, m)
	}
	from, err := types.Sender(signer, signed)
	if err != nil || from != a.addr {
		return nil, fmt.Errorf("%w: %s: the transaction's sender is not %s", ErrBadSignature, m, a.addr.Hex())
	}
	return signed, nil
}

// checkSig decodes a 0x-hex r ‖ s ‖ v signature and checks that it
// recovers to the account's address for digest.
func (a *Account) checkSig(method, hexSig string, digest [32]byte) ([]byte, error) {
	sig, err := hexutil.Decode(hexSig)
	if err != nil || len(sig) != crypto.SignatureLength {
		return nil, fmt.Errorf("client: %s: node returned a malformed signature", method)
	}
	if err := VerifySignature(a.addr, digest, sig); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSignature, method, err)
	}
	return sig, nil
}

// VerifySignature checks that the 65-byte Ethereum signature r ‖ s ‖ v
// (v ∈ {27, 28}, s in the lower half of the order as EIP-2 requires) over
// digest recovers to addr, with go-ethereum's ecrecover.
func VerifySignature(addr common.Address, digest [32]byte, sig []byte) error {
	if len(sig) != crypto.SignatureLength {
		return fmt.Errorf("signature is %d bytes, want %d", len(sig), crypto.SignatureLength)
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return fmt.Errorf("signature's v is %d, want 27 or 28", v)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(v-27, r, s, true) {
		return errors.New("signature values out of range (or high s)")
	}
	rs := make([]byte, 65)
	copy(rs, sig)
	rs[64] = v - 27
	pub, err := crypto.SigToPub(digest[:], rs)
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	if got := crypto.PubkeyToAddress(*pub); got != addr {
		return fmt.Errorf("recovers to %s, not %s", got.Hex(), addr.Hex())
	}
	return nil
}

// TxRequest turns tx into eth_signTransaction's request object from from,
// for chainID: legacy (type 0x0, EIP-155), EIP-2930 (0x1) or EIP-1559 (0x2).
// A typed transaction's own chain id must be chainID or unset (zero).
func TxRequest(from common.Address, tx *types.Transaction, chainID *big.Int) (api.TransactionRequest, error) {
	r, err := ethprep.TxRequest(from, tx, chainID)
	if err != nil {
		return r, fmt.Errorf("client: %w", err)
	}
	return r, nil
}

// TxFromRequest builds the unsigned transaction a request describes, and
// its chain id, by the rules every node applies (the node also requires
// from and may limit the chain ids it signs for): what it refuses, a node
// refuses, and what it accepts gets the digest a node computes. It is for
// callers that hold requests as JSON (the CLI's `keymesh sign tx --file`)
// and need the digest to approve. An error wraps the *api.Error a node
// would answer with.
func TxFromRequest(r api.TransactionRequest) (*types.Transaction, *big.Int, error) {
	t, err := ethprep.BuildTx(&r, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	return t.Tx, t.ChainID, nil
}

// DecodeTxRequest decodes an eth_signTransaction transaction object from
// JSON as a node does: strictly (one object, no member
// api.TransactionRequest does not name, nothing after it).
func DecodeTxRequest(b []byte) (api.TransactionRequest, error) {
	r, err := ethprep.DecodeTxRequest(b)
	if err != nil {
		return api.TransactionRequest{}, fmt.Errorf("client: %w", err)
	}
	return *r, nil
}
