package client_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/wallet"
)

// stubSigner is a stand-in for a cluster, for the SDK's own checks: it
// holds a plain go-ethereum key (a real cluster never does; the end-to-end
// test in internal/cli uses one) and answers the wallet methods, computing
// each digest itself with go-ethereum. lie makes it misbehave the way a
// malicious node could.
type stubSigner struct {
	key  *ecdsa.PrivateKey
	addr common.Address

	mu     sync.Mutex
	proofs []string // X-Keymesh-Auth of each request
	lie    string   // "": honest; "sig": sign another digest; "tx": sign another tx; "highs": malleate s
}

func newStub(t *testing.T) (*stubSigner, *httptest.Server) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := &stubSigner{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
	reg := httpapi.NewRegistry()
	sign := func(digest []byte) string {
		s.mu.Lock()
		lie := s.lie
		s.mu.Unlock()
		if lie == "sig" {
			digest = crypto.Keccak256(digest)
		}
		sig, err := crypto.Sign(digest, s.key)
		if err != nil {
			panic(err)
		}
		if lie == "highs" { // (r, n−s, v^1) also recovers, but is malleated
			n := crypto.S256().Params().N
			sv := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64]))
			sv.FillBytes(sig[32:64])
			sig[64] ^= 1
		}
		sig[64] += 27
		return hexutil.Encode(sig)
	}
	record := func(ctx context.Context) {
		s.mu.Lock()
		s.proofs = append(s.proofs, httpapi.Proofs(ctx))
		s.mu.Unlock()
	}
	reg.Register(api.MethodPersonalSign, func(ctx context.Context, p json.RawMessage) (any, error) {
		record(ctx)
		var arr []string
		if err := json.Unmarshal(p, &arr); err != nil || len(arr) != 2 {
			return nil, api.Errorf(api.CodeInvalidParams, "bad params")
		}
		msg, err := hexutil.Decode(arr[0])
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidParams, "bad data")
		}
		return sign(accounts.TextHash(msg)), nil
	})
	reg.Register(api.MethodSignTypedDataV4, func(ctx context.Context, p json.RawMessage) (any, error) {
		record(ctx)
		var arr []json.RawMessage
		if err := json.Unmarshal(p, &arr); err != nil || len(arr) != 2 {
			return nil, api.Errorf(api.CodeInvalidParams, "bad params")
		}
		var td apitypes.TypedData
		if err := json.Unmarshal(arr[1], &td); err != nil {
			return nil, api.Errorf(api.CodeInvalidParams, "bad typed data")
		}
		h, _, err := apitypes.TypedDataAndHash(td)
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidInput, "typed data: %v", err)
		}
		return sign(h), nil
	})
	reg.Register(api.MethodSignDigest, func(ctx context.Context, p json.RawMessage) (any, error) {
		record(ctx)
		var sp api.SignDigestParams
		if err := httpapi.DecodeParams(p, &sp); err != nil {
			return nil, err
		}
		d, err := hexutil.Decode(sp.Digest)
		if err != nil || len(d) != 32 {
			return nil, api.Errorf(api.CodeInvalidParams, "bad digest")
		}
		return api.SignatureResult{Signature: sign(d)}, nil
	})
	reg.Register(api.MethodSignTransaction, func(ctx context.Context, p json.RawMessage) (any, error) {
		record(ctx)
		var arr []api.TransactionRequest
		if err := json.Unmarshal(p, &arr); err != nil || len(arr) != 1 {
			return nil, api.Errorf(api.CodeInvalidParams, "bad params")
		}
		if arr[0].From == nil || common.HexToAddress(*arr[0].From) != s.addr {
			return nil, api.Errorf(api.CodeInvalidParams, "bad from")
		}
		tx, chainID, err := client.TxFromRequest(arr[0])
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
		}
		s.mu.Lock()
		lie := s.lie
		s.mu.Unlock()
		if lie == "tx" { // sign a transfer of more value than asked
			tx = types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: tx.Nonce(), GasTipCap: tx.GasTipCap(), GasFeeCap: tx.GasFeeCap(),
				Gas: tx.Gas(), To: tx.To(), Value: new(big.Int).Add(tx.Value(), big.NewInt(1)), Data: tx.Data()})
		}
		signed, err := types.SignTx(tx, types.LatestSignerForChainID(chainID), s.key)
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidInput, "%v", err)
		}
		raw, _ := signed.MarshalBinary()
		return hexutil.Encode(raw), nil
	})
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{
		Registry: reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:    func(context.Context) api.ReadyStatus { return api.ReadyStatus{Ready: true} },
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *stubSigner) setLie(l string) {
	s.mu.Lock()
	s.lie = l
	s.mu.Unlock()
}

// approvals records what the SDK asked to approve and returns a proof that
// names the operation hash, so the test can check what travelled.
type approvals struct {
	mu  sync.Mutex
	ops []client.Operation
}

func (a *approvals) Approve(ctx context.Context, op client.Operation) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ops = append(a.ops, op)
	return "proof:" + hexutil.Encode(op.Hash[:]), nil
}

func (a *approvals) last() client.Operation {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ops[len(a.ops)-1]
}

func setup(t *testing.T) (*stubSigner, *client.Account, *approvals) {
	stub, srv := newStub(t)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ap := &approvals{}
	return stub, client.NewAccount(c, ap, "app", "alice", stub.addr), ap
}

// checkApproval checks that the last approval was for method and digest and
// that it travelled in X-Keymesh-Auth.
func checkApproval(t *testing.T, stub *stubSigner, ap *approvals, acct *client.Account, method string, digest []byte) {
	t.Helper()
	op := ap.last()
	want := client.OperationHash(method, acct.Address(), [32]byte(digest))
	if op.Method != method || op.Scope != "app" || op.Account != "alice" || op.Hash != want {
		t.Fatalf("approval %+v, want %s over %x", op, method, want)
	}
	stub.mu.Lock()
	got := stub.proofs[len(stub.proofs)-1]
	stub.mu.Unlock()
	if got != "proof:"+hexutil.Encode(want[:]) {
		t.Fatalf("node saw proofs %q", got)
	}
}

func TestAccountSignMessage(t *testing.T) {
	stub, acct, ap := setup(t)
	ctx := context.Background()
	msg := []byte("hello keymesh")
	sig, err := acct.SignMessage(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	// go-ethereum recovers the account from the EIP-191 hash.
	rs := append([]byte(nil), sig...)
	rs[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash(msg), rs)
	if err != nil || crypto.PubkeyToAddress(*pub) != acct.Address() {
		t.Fatalf("signature does not recover to the account: %v", err)
	}
	checkApproval(t, stub, ap, acct, api.MethodPersonalSign, accounts.TextHash(msg))

	for _, lie := range []string{"sig", "highs"} {
		stub.setLie(lie)
		if _, err := acct.SignMessage(ctx, msg); !errors.Is(err, client.ErrBadSignature) {
			t.Fatalf("lie %q: got %v, want ErrBadSignature", lie, err)
		}
	}
	stub.setLie("")
	if _, err := acct.SignMessage(ctx, make([]byte, api.MaxMessageBytes+1)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized message: %v", err)
	}
}

const permitJSON = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
  "Permit": [{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]
 },
 "primaryType": "Permit",
 "domain": {"name":"USD Coin","version":"2","chainId":"1","verifyingContract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
 "message": {"owner":"0x1111111111111111111111111111111111111111","spender":"0x2222222222222222222222222222222222222222","value":"1000000000000000000000","nonce":"0","deadline":"1893456000"}
}`

func TestAccountSignTypedData(t *testing.T) {
	stub, acct, ap := setup(t)
	ctx := context.Background()
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(permitJSON), &td); err != nil {
		t.Fatal(err)
	}
	sig, err := acct.SignTypedData(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifySignature(acct.Address(), [32]byte(h), sig); err != nil {
		t.Fatal(err)
	}
	checkApproval(t, stub, ap, acct, api.MethodSignTypedDataV4, h)

	if _, err := acct.SignTypedDataJSON(ctx, []byte(`{"types":{},"primaryType":"Nope","domain":{},"message":{}}`)); err == nil {
		t.Fatal("typed data that does not hash was sent")
	}
	if _, err := acct.SignTypedDataJSON(ctx, []byte(`not json`)); err == nil {
		t.Fatal("malformed typed data accepted")
	}
}

func TestAccountSignDigest(t *testing.T) {
	stub, acct, ap := setup(t)
	d := crypto.Keccak256Hash([]byte("raw"))
	sig, err := acct.SignDigest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifySignature(acct.Address(), d, sig); err != nil {
		t.Fatal(err)
	}
	checkApproval(t, stub, ap, acct, api.MethodSignDigest, d[:])
}

func testTxs(chainID *big.Int) map[string]*types.Transaction {
	to := common.HexToAddress("0x3333333333333333333333333333333333333333")
	al := types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}, {2}}}}
	return map[string]*types.Transaction{
		"legacy":  types.NewTx(&types.LegacyTx{Nonce: 7, GasPrice: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(12345)}),
		"2930":    types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: 1, GasPrice: big.NewInt(3e9), Gas: 50000, To: &to, Data: []byte{1, 2, 3}, AccessList: al}),
		"1559":    types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 2, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(5e9), Gas: 21000, To: &to, Value: big.NewInt(1)}),
		"create":  types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 100000, Data: []byte{0x60, 0x00}}),
		"emptyAL": types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: 4, GasPrice: big.NewInt(1), Gas: 21000, To: &to}),
	}
}

func TestTxRequestRoundTrip(t *testing.T) {
	chainID := big.NewInt(1337)
	from := common.HexToAddress("0x4444444444444444444444444444444444444444")
	signer := types.LatestSignerForChainID(chainID)
	for name, tx := range testTxs(chainID) {
		req, err := client.TxRequest(from, tx, chainID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Through JSON, as it travels.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back api.TransactionRequest
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, gotChain, err := client.TxFromRequest(back)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if gotChain.Cmp(chainID) != 0 || got.Type() != tx.Type() || signer.Hash(got) != signer.Hash(tx) {
			t.Fatalf("%s: round trip changed the transaction", name)
		}
	}
	if _, err := client.TxRequest(from, testTxs(chainID)["1559"], big.NewInt(1)); err == nil {
		t.Fatal("chain id mismatch accepted")
	}
	// Without a chain id of its own (as bind builds it), a typed
	// transaction is for chainID.
	noChain := types.NewTx(&types.DynamicFeeTx{Nonce: 1, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000})
	req, err := client.TxRequest(from, noChain, chainID)
	if err != nil || *req.ChainID != "0x539" {
		t.Fatalf("typed tx without chain id: %v", err)
	}
	if _, err := client.TxRequest(from, testTxs(chainID)["legacy"], nil); err == nil {
		t.Fatal("missing chain id accepted")
	}
}

func TestTxFromRequestRejects(t *testing.T) {
	s := func(v string) *string { return &v }
	base := func() api.TransactionRequest {
		return api.TransactionRequest{ChainID: s("0x1"), Nonce: s("0x0"), Gas: s("0x5208"), GasPrice: s("0x1"), To: s("0x3333333333333333333333333333333333333333")}
	}
	cases := map[string]func(*api.TransactionRequest){
		"no chain":     func(r *api.TransactionRequest) { r.ChainID = nil },
		"zero chain":   func(r *api.TransactionRequest) { r.ChainID = s("0x0") },
		"leading zero": func(r *api.TransactionRequest) { r.Nonce = s("0x01") },
		"decimal":      func(r *api.TransactionRequest) { r.Gas = s("21000") },
		"bad to":       func(r *api.TransactionRequest) { r.To = s("0x1234") },
		"no gas price": func(r *api.TransactionRequest) { r.GasPrice = nil },
		"mixed fees":   func(r *api.TransactionRequest) { r.MaxFeePerGas = s("0x2") },
		"blob type":    func(r *api.TransactionRequest) { r.Type = s("0x3") },
		"data/input":   func(r *api.TransactionRequest) { r.Data = s("0x01"); r.Input = s("0x02") },
		"odd data":     func(r *api.TransactionRequest) { r.Data = s("0x123") },
		"legacy AL":    func(r *api.TransactionRequest) { r.Type = s("0x0"); r.AccessList = []api.AccessTuple{} },
		"bad storage": func(r *api.TransactionRequest) {
			r.AccessList = []api.AccessTuple{{Address: *r.To, StorageKeys: []string{"0x01"}}}
		},
		"nonce > 2^64": func(r *api.TransactionRequest) { r.Nonce = s("0x10000000000000000") },
		"1559 no tip":  func(r *api.TransactionRequest) { r.GasPrice = nil; r.MaxFeePerGas = s("0x2") },
		"1559 gasPrice": func(r *api.TransactionRequest) {
			r.Type = s("0x2")
			r.MaxFeePerGas = s("0x2")
			r.MaxPriorityFeePerGas = s("0x1")
		},
	}
	if _, _, err := client.TxFromRequest(base()); err != nil {
		t.Fatalf("base request: %v", err)
	}
	for name, mod := range cases {
		r := base()
		mod(&r)
		if _, _, err := client.TxFromRequest(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAccountSignTx(t *testing.T) {
	stub, acct, ap := setup(t)
	ctx := context.Background()
	chainID := big.NewInt(1337)
	signer := types.LatestSignerForChainID(chainID)
	for name, tx := range testTxs(chainID) {
		signed, err := acct.SignTx(ctx, tx, chainID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		from, err := types.Sender(signer, signed)
		if err != nil || from != acct.Address() {
			t.Fatalf("%s: sender %s, %v", name, from.Hex(), err)
		}
		if signed.Hash() == tx.Hash() || signer.Hash(signed) != signer.Hash(tx) {
			t.Fatalf("%s: signed another transaction", name)
		}
		h := signer.Hash(tx)
		checkApproval(t, stub, ap, acct, api.MethodSignTransaction, h[:])
	}
	stub.setLie("tx")
	if _, err := acct.SignTx(ctx, testTxs(chainID)["1559"], chainID); !errors.Is(err, client.ErrBadSignature) {
		t.Fatalf("swapped transaction: got %v, want ErrBadSignature", err)
	}
	stub.setLie("")

	// A request as JSON (the CLI's path), From filled in.
	req, err := client.TxRequest(acct.Address(), testTxs(chainID)["2930"], chainID)
	if err != nil {
		t.Fatal(err)
	}
	req.From = nil
	if _, err := acct.SignTxRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	other := "0x5555555555555555555555555555555555555555"
	req.From = &other
	if _, err := acct.SignTxRequest(ctx, req); err == nil {
		t.Fatal("request from another address was sent")
	}
}

func TestSignerFn(t *testing.T) {
	_, acct, _ := setup(t)
	chainID := big.NewInt(1337)
	opts, err := acct.TransactOpts(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	if opts.From != acct.Address() {
		t.Fatal("TransactOpts.From is not the account")
	}
	tx := testTxs(chainID)["1559"]
	signed, err := opts.Signer(acct.Address(), tx)
	if err != nil {
		t.Fatal(err)
	}
	if from, _ := types.Sender(types.LatestSignerForChainID(chainID), signed); from != acct.Address() {
		t.Fatal("wrong sender")
	}
	if _, err := opts.Signer(common.Address{1}, tx); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("other address: %v", err)
	}
	if _, err := acct.TransactOpts(context.Background(), big.NewInt(0)); err == nil {
		t.Fatal("chain id 0 accepted")
	}
}

func TestVerifySignature(t *testing.T) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	d := crypto.Keccak256Hash([]byte("x"))
	sig, _ := crypto.Sign(d[:], key)
	sig[64] += 27
	if err := client.VerifySignature(addr, d, sig); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func([]byte) []byte{
		"v=0":       func(s []byte) []byte { s[64] -= 27; return s },
		"short":     func(s []byte) []byte { return s[:64] },
		"flipped r": func(s []byte) []byte { s[5] ^= 1; return s },
		"zero s":    func(s []byte) []byte { clear(s[32:64]); return s },
	} {
		if err := client.VerifySignature(addr, d, mod(append([]byte(nil), sig...))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := client.VerifySignature(common.Address{1}, d, sig); err == nil {
		t.Error("other address accepted")
	}
}

func TestApproverError(t *testing.T) {
	stub, srv := newStub(t)
	c, _ := client.New(srv.URL)
	denied := errors.New("user declined")
	acct := client.NewAccount(c, client.ApproverFunc(func(context.Context, client.Operation) (string, error) { return "", denied }), "app", "alice", stub.addr)
	if _, err := acct.SignMessage(context.Background(), []byte("x")); !errors.Is(err, denied) {
		t.Fatalf("got %v", err)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.proofs) != 0 {
		t.Fatal("a request was sent without approval")
	}
}

// FuzzTxFromRequest feeds transaction requests (as JSON, the CLI's input)
// to TxFromRequest: it never panics, what it accepts survives the round
// trip through TxRequest with the same signing hash, and a node
// (wallet.Prepare) that accepts it computes the same digest.
func FuzzTxFromRequest(f *testing.F) {
	chainID := big.NewInt(1337)
	from := common.HexToAddress("0x4444444444444444444444444444444444444444")
	for _, tx := range testTxs(chainID) {
		req, err := client.TxRequest(from, tx, chainID)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(req)
		f.Add(b)
	}
	f.Add([]byte(`{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","input":"0x","data":"0x"}`))
	f.Add([]byte(`{"type":"0x7","chainId":"0x1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req api.TransactionRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		tx, cid, err := client.TxFromRequest(req)
		if err != nil {
			return
		}
		// Where the node accepts it too (it also enforces limits), it signs
		// the same digest.
		if req.From == nil {
			f := from.Hex()
			req.From = &f
		}
		params, _ := json.Marshal([]any{req})
		if p, err := wallet.Prepare(api.MethodSignTransaction, params, nil); err == nil && p.Digest != types.LatestSignerForChainID(cid).Hash(tx) {
			t.Fatal("node and SDK digests differ")
		}
		back, err := client.TxRequest(from, tx, cid)
		if err != nil {
			t.Fatalf("accepted request does not convert back: %v", err)
		}
		tx2, cid2, err := client.TxFromRequest(back)
		if err != nil {
			t.Fatalf("round trip refused: %v", err)
		}
		s := types.LatestSignerForChainID(cid)
		if cid.Cmp(cid2) != 0 || tx.Type() != tx2.Type() || s.Hash(tx) != s.Hash(tx2) {
			t.Fatal("round trip changed the transaction")
		}
	})
}

// Example_account shows the wallet flow with a developer key (developer-owned
// auth): a scope, an account registered in it, a threshold wallet key, and
// signatures. (Not run: it needs a cluster; see internal/cli's end-to-end
// test.)
func Example_account() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:7100")
	dev, _ := client.GenerateKey("ed25519")
	scope, _ := c.CreateScope(ctx, dev, client.ScopeConfig{
		RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "developer", SessionTTL: time.Hour,
	})
	c.RegisterDelegated(ctx, dev, scope.ID, "alice", "")

	acct, _, err := client.CreateAccount(ctx, c, client.DeveloperSigner(dev, scope.ID), scope.ID, "alice")
	if err != nil {
		panic(err)
	}
	sig, _ := acct.SignMessage(ctx, []byte("hello")) // verified before it is returned
	fmt.Printf("%s signed: %x\n", acct.Address(), sig)

	// go-ethereum contract bindings sign through the cluster:
	opts, _ := acct.TransactOpts(ctx, big.NewInt(1))
	_ = opts // bind.NewBoundContract(addr, abi, backend, backend, backend).Transact(opts, "transfer", …)
}

// TestDigestsMatchNode checks that the digests the SDK approves are the
// ones a node computes from the same params (wallet.Prepare), for every
// signing method: otherwise the nodes would refuse every approval.
func TestDigestsMatchNode(t *testing.T) {
	chainID := big.NewInt(1337)
	from := common.HexToAddress("0x4444444444444444444444444444444444444444")
	signer := types.LatestSignerForChainID(chainID)
	for name, tx := range testTxs(chainID) {
		req, err := client.TxRequest(from, tx, chainID)
		if err != nil {
			t.Fatal(err)
		}
		params, _ := json.Marshal([]any{req})
		p, err := wallet.Prepare(api.MethodSignTransaction, params, nil)
		if err != nil {
			t.Fatalf("%s: node refuses the SDK's request: %v", name, err)
		}
		if p.Address != from || p.Digest != signer.Hash(tx) {
			t.Fatalf("%s: node digest differs from the SDK's", name)
		}
	}

	msg := []byte("hello \x00 bytes")
	params, _ := json.Marshal([]string{hexutil.Encode(msg), from.Hex()})
	p, err := wallet.Prepare(api.MethodPersonalSign, params, nil)
	if err != nil || p.Digest != [32]byte(accounts.TextHash(msg)) {
		t.Fatalf("personal_sign: %v", err)
	}

	want, err := client.TypedDataHash([]byte(permitJSON))
	if err != nil {
		t.Fatal(err)
	}
	params, _ = json.Marshal([]any{from.Hex(), json.RawMessage(permitJSON)})
	p, err = wallet.Prepare(api.MethodSignTypedDataV4, params, nil)
	if err != nil || p.Digest != want {
		t.Fatalf("eth_signTypedData_v4: %v", err)
	}
}
