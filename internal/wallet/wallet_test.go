package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/transport"
)

// approveParams returns the proofs approving method with params, computing
// the operation hash as a client does.
func approveParams(t *testing.T, u *user, method string, params any) string {
	t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(method, raw, nil)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", method, err)
	}
	return u.approve(method, p.Hash())
}

func createAccount(t testing.TB, c *cluster, node int, u *user) common.Address {
	t.Helper()
	proofs := u.approve(api.MethodCreateAccount, api.OperationHash(api.MethodCreateAccount, common.Address{}, [32]byte{}))
	var res api.CreateAccountResult
	if err := c.call(node, proofs, api.MethodCreateAccount, api.CreateAccountParams{Scope: u.scope, Account: u.account}, &res); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	if !common.IsHexAddress(res.Address) || res.Threshold != 2 || res.N != 3 || res.Scope != u.scope || res.Account != u.account {
		t.Fatalf("createAccount result %+v", res)
	}
	pub, err := ethcrypto.DecompressPubkey(hexutil.MustDecode(res.PublicKey))
	if err != nil || ethcrypto.PubkeyToAddress(*pub).Hex() != res.Address {
		t.Fatalf("public key %s does not give address %s", res.PublicKey, res.Address)
	}
	return common.HexToAddress(res.Address)
}

func personalSign(c *cluster, node int, u *user, t *testing.T, msg []byte, addr common.Address) ([]byte, error) {
	params := []any{hexutil.Encode(msg), addr.Hex()}
	var sigHex string
	err := c.call(node, approveParams(t, u, api.MethodPersonalSign, params), api.MethodPersonalSign, params, &sigHex)
	if err != nil {
		return nil, err
	}
	return hexutil.Decode(sigHex)
}

// recoverAddr checks a 65-byte r ‖ s ‖ v (v ∈ {27, 28}) signature over digest
// with go-ethereum and returns the signer's address.
func recoverAddr(t *testing.T, digest, sig []byte) common.Address {
	t.Helper()
	if len(sig) != 65 || sig[64] != 27 && sig[64] != 28 {
		t.Fatalf("signature %x: want 65 bytes with v ∈ {27, 28}", sig)
	}
	s := bytes.Clone(sig)
	s[64] -= 27
	pub, err := ethcrypto.SigToPub(digest, s)
	if err != nil {
		t.Fatal(err)
	}
	if !ethcrypto.VerifySignature(ethcrypto.FromECDSAPub(pub), digest, s[:64]) {
		t.Fatal("signature does not verify")
	}
	return ethcrypto.PubkeyToAddress(*pub)
}

func TestCreateAndSign(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, nil)
	alice := authz.newUser("app", "alice")
	addr := createAccount(t, c, 0, alice)

	// Every node holds a share record, sealed, and knows the owner.
	for i, n := range c.nodes {
		sealed, err := n.st.Get(context.Background(), nsShare, addrKey(addr))
		if err != nil {
			t.Fatalf("node %d: no share record: %v", i+1, err)
		}
		var sh dkls23.Share
		if sh.UnmarshalBinary(sealed) == nil {
			t.Fatalf("node %d: share record stored unsealed", i+1)
		}
		raw, err := n.svc.sealer.Unseal(sealed, enclave.LabelShare(addrKey(addr)))
		if err != nil {
			t.Fatalf("node %d: unseal: %v", i+1, err)
		}
		if err := sh.UnmarshalBinary(raw); err != nil || sh.Self() != round.PartyID(i+1) {
			t.Fatalf("node %d: share: %v", i+1, err)
		}
		var got []string
		if err := c.call(i, alice.approve(api.MethodAccounts, api.OperationHash(api.MethodAccounts, common.Address{}, [32]byte{})), api.MethodAccounts, nil, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != addr.Hex() {
			t.Fatalf("node %d: eth_accounts = %v, want [%s]", i+1, got, addr.Hex())
		}
	}
	// eth_accounts without proofs: no accounts, as EIP-1193 wallets answer before connecting.
	var none []string
	if err := c.call(1, "", api.MethodAccounts, nil, &none); err != nil || len(none) != 0 {
		t.Fatalf("eth_accounts without proofs = %v, %v", none, err)
	}

	t.Run("eth_requestAccounts", func(t *testing.T) {
		bob := authz.newUser("app", "bob")
		proofs := func() string {
			return bob.approve(api.MethodCreateAccount, api.OperationHash(api.MethodCreateAccount, common.Address{}, [32]byte{}))
		}
		var first, again []string
		if err := c.call(2, proofs(), api.MethodRequestAccounts, nil, &first); err != nil || len(first) != 1 || !common.IsHexAddress(first[0]) {
			t.Fatalf("first eth_requestAccounts = %v, %v; want one new address", first, err)
		}
		if err := c.call(0, proofs(), api.MethodRequestAccounts, nil, &again); err != nil || len(again) != 1 || again[0] != first[0] {
			t.Fatalf("second eth_requestAccounts = %v, %v; want %v (no new key)", again, err, first)
		}
	})

	t.Run("personal_sign", func(t *testing.T) {
		msg := []byte("hello keymesh")
		for node := range 3 {
			sig, err := personalSign(c, node, alice, t, msg, addr)
			if err != nil {
				t.Fatalf("via node %d: %v", node+1, err)
			}
			if got := recoverAddr(t, accounts.TextHash(msg), sig); got != addr {
				t.Fatalf("via node %d: recovers to %s, want %s", node+1, got.Hex(), addr.Hex())
			}
		}
		// Plain-text data is signed as its UTF-8 bytes.
		params := []any{"plain text", addr.Hex()}
		var sigHex string
		if err := c.call(0, approveParams(t, alice, api.MethodPersonalSign, params), api.MethodPersonalSign, params, &sigHex); err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, accounts.TextHash([]byte("plain text")), hexutil.MustDecode(sigHex)); got != addr {
			t.Fatalf("recovers to %s", got.Hex())
		}
	})

	t.Run("eth_signTypedData_v4 permit", func(t *testing.T) {
		td := permit(addr)
		params := []any{addr.Hex(), td}
		var sigHex string
		if err := c.call(1, approveParams(t, alice, api.MethodSignTypedDataV4, params), api.MethodSignTypedDataV4, params, &sigHex); err != nil {
			t.Fatal(err)
		}
		digest, _, err := apitypes.TypedDataAndHash(td)
		if err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, digest, hexutil.MustDecode(sigHex)); got != addr {
			t.Fatalf("recovers to %s, want %s", got.Hex(), addr.Hex())
		}
		// As MetaMask sends it: the typed data as a string holding JSON.
		raw, _ := json.Marshal(td)
		params = []any{addr.Hex(), string(raw)}
		if err := c.call(0, approveParams(t, alice, api.MethodSignTypedDataV4, params), api.MethodSignTypedDataV4, params, &sigHex); err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, digest, hexutil.MustDecode(sigHex)); got != addr {
			t.Fatalf("typed data as a string: recovers to %s", got.Hex())
		}
	})

	t.Run("keymesh_signDigest", func(t *testing.T) {
		digest := ethcrypto.Keccak256([]byte("raw"))
		params := api.SignDigestParams{Address: addr.Hex(), Digest: hexutil.Encode(digest)}
		var res api.SignatureResult
		if err := c.call(2, approveParams(t, alice, api.MethodSignDigest, params), api.MethodSignDigest, params, &res); err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, digest, hexutil.MustDecode(res.Signature)); got != addr {
			t.Fatalf("recovers to %s", got.Hex())
		}
	})

	t.Run("eth_signTransaction executed by the simulated chain", func(t *testing.T) {
		testTransactions(t, c, alice, addr)
	})

	t.Run("concurrent", func(t *testing.T) {
		const k = 8
		errc := make(chan error, k)
		for i := range k {
			go func() {
				msg := []byte{byte(i)}
				sig, err := personalSign(c, i%3, alice, t, msg, addr)
				if err == nil && recoverAddr(t, accounts.TextHash(msg), sig) != addr {
					err = errors.New("wrong signer")
				}
				errc <- err
			}()
		}
		for range k {
			if err := <-errc; err != nil {
				t.Error(err)
			}
		}
	})
}

func permit(owner common.Address) apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
			"Permit":       {{Name: "owner", Type: "address"}, {Name: "spender", Type: "address"}, {Name: "value", Type: "uint256"}, {Name: "nonce", Type: "uint256"}, {Name: "deadline", Type: "uint256"}},
		},
		PrimaryType: "Permit",
		Domain: apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", ChainId: math.NewHexOrDecimal256(1),
			VerifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
		Message: apitypes.TypedDataMessage{
			"owner": owner.Hex(), "spender": "0x1111111254EEB25477B68fb85Ed929f73A960582",
			"value": "1000000", "nonce": "0", "deadline": "1893456000",
		},
	}
}

func testTransactions(t *testing.T, c *cluster, u *user, addr common.Address) {
	ether := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	sim := simulated.NewBackend(types.GenesisAlloc{addr: {Balance: new(big.Int).Mul(big.NewInt(10), ether)}})
	defer sim.Close()
	ec := sim.Client()
	ctx := context.Background()
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := big.NewInt(1e9) // the simulated miner's default minimum tip
	fee := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	q := hexutil.EncodeBig
	value := big.NewInt(1234567)
	txs := []map[string]any{
		{ // EIP-1559
			"from": addr.Hex(), "to": to.Hex(), "chainId": q(chainID), "nonce": "0x0", "gas": "0x5208",
			"maxFeePerGas": q(fee), "maxPriorityFeePerGas": q(tip), "value": q(value),
		},
		{ // legacy with EIP-155
			"type": "0x0", "from": addr.Hex(), "to": to.Hex(), "chainId": q(chainID), "nonce": "0x1", "gas": "0x5208",
			"gasPrice": q(fee), "value": q(value),
		},
		{ // EIP-2930
			"type": "0x1", "from": addr.Hex(), "to": to.Hex(), "chainId": q(chainID), "nonce": "0x2", "gas": "0x7530",
			"gasPrice": q(fee), "value": q(value), "accessList": []any{map[string]any{"address": to.Hex(), "storageKeys": []string{common.Hash{}.Hex()}}},
		},
	}
	for i, tx := range txs {
		params := []any{tx}
		var rawHex string
		if err := c.call(i%3, approveParams(t, u, api.MethodSignTransaction, params), api.MethodSignTransaction, params, &rawHex); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(hexutil.MustDecode(rawHex)); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if want := []byte{types.DynamicFeeTxType, types.LegacyTxType, types.AccessListTxType}[i]; signed.Type() != want {
			t.Fatalf("tx %d: type %d, want %d", i, signed.Type(), want)
		}
		from, err := types.Sender(types.LatestSignerForChainID(chainID), &signed)
		if err != nil || from != addr {
			t.Fatalf("tx %d: sender %s, %v; want %s", i, from.Hex(), err, addr.Hex())
		}
		if err := ec.SendTransaction(ctx, &signed); err != nil {
			t.Fatalf("tx %d: the chain refuses it: %v", i, err)
		}
		sim.Commit()
		var rcpt *types.Receipt
		for range 100 { // the simulated chain indexes transactions in the background
			if rcpt, err = ec.TransactionReceipt(ctx, signed.Hash()); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("tx %d: receipt %+v, %v", i, rcpt, err)
		}
		bal, err := ec.BalanceAt(ctx, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := new(big.Int).Mul(value, big.NewInt(int64(i+1))); bal.Cmp(want) != 0 {
			t.Fatalf("after tx %d the recipient holds %s, want %s", i, bal, want)
		}
	}
}

func TestForgedApprovals(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, nil)
	alice := authz.newUser("app", "alice")
	mallory := authz.newUser("app", "mallory")
	addr := createAccount(t, c, 0, alice)

	msg := hexutil.Encode([]byte("pay mallory"))
	params := []any{msg, addr.Hex()}
	other := []any{hexutil.Encode([]byte("hello")), addr.Hex()}

	// Through the API: an approval for another message, by another user, or none.
	for name, proofs := range map[string]string{
		"approval of another message": approveParams(t, alice, api.MethodPersonalSign, other),
		"another user's approval":     approveParams(t, mallory, api.MethodPersonalSign, params),
		"approval for another method": alice.approve(api.MethodSignDigest, mustPrepare(t, api.MethodPersonalSign, params).Hash()),
		"no proofs":                   "",
	} {
		err := c.call(1, proofs, api.MethodPersonalSign, params, nil)
		if code := apiCode(err); code != api.CodeUnauthorized && code != api.CodeAuthWrongScope {
			t.Errorf("%s: got %v, want an authorization error", name, err)
		}
	}

	// A malicious gateway (node 1) forwards straight to node 2 an operation
	// the user did not approve, with the proofs of one she did approve: the
	// swapped message, and a transaction swapped after approval.
	txParams := func(to string) []any {
		return []any{map[string]any{"from": addr.Hex(), "to": to, "chainId": "0x1", "nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1", "value": "0x1"}}
	}
	approvedTx := txParams("0x000000000000000000000000000000000000bEEF")
	for name, f := range map[string]struct {
		method         string
		sent, approved any
	}{
		"forged approval": {api.MethodPersonalSign, params, other},
		"tx swapped":      {api.MethodSignTransaction, txParams("0x0000000000000000000000000000000000000bad"), approvedTx},
	} {
		sent, _ := json.Marshal(f.sent)
		inv := signInvite{Method: f.method, Params: sent, Proofs: approveParams(t, alice, f.method, f.approved), Signers: []round.PartyID{1, 2}}
		inv.Nonce[0], inv.Request[0] = 1, 1
		_, err := c.nodes[0].tr.Call(context.Background(), 2, kindSign, inv.marshal())
		var re *transport.RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "another operation") {
			t.Errorf("%s: node 2 answered %v, want a refusal", name, err)
		}
	}
	// A gateway that runs a second key generation under one approval and
	// request id (auth accepts the approval again for the same request):
	// the other nodes refuse, and alice still has one key everywhere.
	var req [requestLen]byte
	req[0] = 42
	createProofs := alice.approve(api.MethodCreateAccount, api.OperationHash(api.MethodCreateAccount, common.Address{}, [32]byte{}))
	owner := auth.Principal{Scope: alice.scope, Account: alice.account}
	if _, err := c.nodes[0].svc.create(context.Background(), owner, req, createProofs); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].svc.create(context.Background(), owner, req, createProofs); apiCode(err) != api.CodeRejected || !strings.Contains(err.Error(), "already created a key") {
		t.Fatalf("second key generation under one request: %v", err)
	}
	for i, n := range c.nodes {
		if addrs, err := n.svc.addresses(context.Background(), alice.scope, alice.account); err != nil || len(addrs) != 2 {
			t.Fatalf("node %d: alice has %v (%v), want 2 keys", i+1, addrs, err)
		}
	}

	// And the approved operation, forwarded the same way, is accepted by the
	// honest node (the refusals above are not for another reason): node 1
	// runs its own session beside it.
	if _, err := personalSign(c, 0, alice, t, []byte("pay mallory"), addr); err != nil {
		t.Fatal(err)
	}
}

func mustPrepare(t *testing.T, method string, params any) *Prepared {
	raw, _ := json.Marshal(params)
	p, err := Prepare(method, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNodesDown(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, nil)
	alice := authz.newUser("app", "alice")
	addr := createAccount(t, c, 0, alice)
	sign := func(node int) error {
		msg := []byte(time.Now().String())
		sig, err := personalSign(c, node, alice, t, msg, addr)
		if err == nil && recoverAddr(t, accounts.TextHash(msg), sig) != addr {
			t.Fatal("wrong signer")
		}
		return err
	}

	// One of three stopped: still signs, through either remaining node, even
	// before the links notice (the gateway retries with another set).
	c.stop(2)
	for node := range 2 {
		if err := sign(node); err != nil {
			t.Fatalf("node 3 down, via node %d: %v", node+1, err)
		}
	}
	// Account creation needs all n nodes: a clear error.
	proofs := alice.approve(api.MethodCreateAccount, api.OperationHash(api.MethodCreateAccount, common.Address{}, [32]byte{}))
	c.waitLinks(2)
	if err := c.call(0, proofs, api.MethodCreateAccount, nil, nil); apiCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "[3]") {
		t.Fatalf("createAccount with node 3 down: %v", err)
	}

	// Two stopped: fails fast with a clear error.
	c.stop(1)
	c.waitLinks(1, 2)
	t0 := time.Now()
	err := sign(0)
	if apiCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "signing needs 2 nodes") {
		t.Fatalf("two nodes down: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("two nodes down: failed after %v, want fast", d)
	}

	// A node back: signs again, with the share it unseals from its store.
	c.restart(1)
	c.waitLinks(2)
	for _, node := range []int{0, 1} {
		if err := sign(node); err != nil {
			t.Fatalf("node 2 back, via node %d: %v", node+1, err)
		}
	}
}

func TestBadRequests(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, func(o *Options) { o.ChainIDs = []uint64{1337} })
	alice := authz.newUser("app", "alice")
	addr := createAccount(t, c, 0, alice)
	bob := authz.newUser("noraw", "bob") // a scope that does not allow raw digests
	bobAddr := createAccount(t, c, 1, bob)
	unknown := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	tx := func(kv ...any) []any {
		m := map[string]any{"from": addr.Hex(), "to": unknown.Hex(), "chainId": "0x539", "nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return []any{m}
	}
	cases := []struct {
		name, method string
		params       any
		code         int
		msg          string
	}{
		{"personal_sign one param", api.MethodPersonalSign, []any{"0x00"}, api.CodeInvalidParams, "array of 2"},
		{"personal_sign number", api.MethodPersonalSign, []any{1, addr.Hex()}, api.CodeInvalidParams, "data must be a string"},
		{"personal_sign bad address", api.MethodPersonalSign, []any{"0x00", "0x12"}, api.CodeInvalidParams, "address must be"},
		{"personal_sign bad hex", api.MethodPersonalSign, []any{"0xzz", addr.Hex()}, api.CodeInvalidParams, "hex"},
		{"personal_sign too large", api.MethodPersonalSign, []any{hexutil.Encode(make([]byte, api.MaxMessageBytes+1)), addr.Hex()}, api.CodeLimitExceeded, "exceeds"},
		{"personal_sign unknown account", api.MethodPersonalSign, []any{"0x00", unknown.Hex()}, api.CodeAuthWrongScope, "holds no wallet"},
		{"typed data not an object", api.MethodSignTypedDataV4, []any{addr.Hex(), 5}, api.CodeInvalidParams, "typed data"},
		{"typed data bad types", api.MethodSignTypedDataV4, []any{addr.Hex(), map[string]any{"types": map[string]any{"EIP712Domain": []any{}}, "primaryType": "Nope", "domain": map[string]any{}, "message": map[string]any{}}}, api.CodeInvalidInput, "EIP-712"},
		{"tx not an array", api.MethodSignTransaction, map[string]any{"from": addr.Hex()}, api.CodeInvalidParams, "array holding one"},
		{"tx nonce a number", api.MethodSignTransaction, tx("nonce", 1), api.CodeInvalidParams, "nonce"},
		{"tx no chainId", api.MethodSignTransaction, tx("chainId", nil), api.CodeInvalidParams, "chainId is required"},
		{"tx chain id mismatch", api.MethodSignTransaction, tx("chainId", "0x1"), api.CodeInvalidInput, "chainId 1 does not match"},
		{"tx unknown field", api.MethodSignTransaction, tx("colour", "red"), api.CodeInvalidParams, "colour"},
		{"tx gasPrice and 1559", api.MethodSignTransaction, tx("gasPrice", "0x1"), api.CodeInvalidParams, "not gasPrice"},
		{"tx tip above cap", api.MethodSignTransaction, tx("maxPriorityFeePerGas", "0x11"), api.CodeInvalidInput, "exceeds maxFeePerGas"},
		{"tx bad data", api.MethodSignTransaction, tx("data", "0x1"), api.CodeInvalidParams, "data/input"},
		{"tx type 4", api.MethodSignTransaction, tx("type", "0x4"), api.CodeInvalidInput, "not supported"},
		{"tx leading zeros", api.MethodSignTransaction, tx("gas", "0x05208"), api.CodeInvalidParams, "gas must be"},
		{"tx data too large", api.MethodSignTransaction, tx("data", hexutil.Encode(make([]byte, api.MaxTxDataBytes+1))), api.CodeLimitExceeded, "exceeds"},
		{"tx unknown from", api.MethodSignTransaction, tx("from", unknown.Hex()), api.CodeAuthWrongScope, "holds no wallet"},
		{"digest short", api.MethodSignDigest, api.SignDigestParams{Address: addr.Hex(), Digest: "0x01"}, api.CodeInvalidParams, "32 bytes"},
		{"digest extra member", api.MethodSignDigest, map[string]any{"address": addr.Hex(), "digest": common.Hash{}.Hex(), "x": 1}, api.CodeInvalidParams, ""},
		{"digest not enabled for the scope", api.MethodSignDigest, api.SignDigestParams{Address: bobAddr.Hex(), Digest: common.Hash{1}.Hex()}, api.CodeRejected, "not enabled for scope noraw"},
		{"createAccount wrong type", api.MethodCreateAccount, map[string]any{"scope": 5}, api.CodeInvalidParams, ""},
		{"eth_accounts params", api.MethodAccounts, []any{1}, api.CodeInvalidParams, ""},
	}
	before := storeSnapshot(t, c)
	for _, tc := range cases {
		// Approve whatever the params are, so only the params are wrong.
		u := alice
		if strings.Contains(tc.name, "scope") {
			u = bob
		}
		proofs := u.approve(tc.method, [32]byte{})
		if raw, _ := json.Marshal(tc.params); true {
			if p, err := Prepare(tc.method, raw, nil); err == nil {
				proofs = u.approve(tc.method, p.Hash())
			}
		}
		err := c.call(0, proofs, tc.method, tc.params, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: got %v, want code %d with %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if after := storeSnapshot(t, c); after != before {
		t.Errorf("bad requests changed the wallet state")
	}
}

// storeSnapshot is every node's wallet namespaces, for "changes nothing".
func storeSnapshot(t *testing.T, c *cluster) string {
	var b strings.Builder
	for _, n := range c.nodes {
		for _, ns := range []string{nsShare, nsAddress, nsOwner} {
			es, err := n.st.List(context.Background(), ns, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				b.WriteString(ns + e.Key + hexutil.Encode(e.Value) + "\n")
			}
		}
	}
	return b.String()
}

// TestStalledSigner: a co-signer that accepts the invitation but never
// takes part makes the attempt time out naming it; the gateway retries once
// with another signer set, and with every peer stalled the client gets an
// error naming the node.
func TestStalledSigner(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, func(o *Options) { o.SignTimeout = time.Second })
	alice := authz.newUser("app", "alice")
	addr := createAccount(t, c, 0, alice)
	stall := func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c.nodes[2].tr.Handle(kindSign, stall)
	gw := c.nodes[0].svc
	gw.rr.Store(0) // the next pick is node 3
	retries := gw.Stats().Retries.Load()
	msg := []byte("stalled")
	sig, err := personalSign(c, 0, alice, t, msg, addr)
	if err != nil {
		t.Fatalf("node 3 stalled: %v", err)
	}
	if recoverAddr(t, accounts.TextHash(msg), sig) != addr || gw.Stats().Retries.Load() != retries+1 {
		t.Fatalf("want a valid signature after one retry (retries %d → %d)", retries, gw.Stats().Retries.Load())
	}

	c.nodes[1].tr.Handle(kindSign, stall)
	_, err = personalSign(c, 0, alice, t, msg, addr)
	if apiCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("every peer stalled: %v", err)
	}
}

// TestAddressExistenceNotRevealed (issue 16): the signing methods answered
// "no account with address" for an unknown address before authorizing,
// so anyone could test whether an address is a wallet on the node. Now
// every caller but the owner gets the same answer for a wallet's address
// as for an unknown one: without proofs, with bad proofs, and with a valid
// approval by another account (mallory approving a signature by alice's
// address, which her own key does sign).
func TestAddressExistenceNotRevealed(t *testing.T) {
	authz := &fakeAuth{}
	c := newCluster(t, authz, nil)
	alice := authz.newUser("app", "alice")
	mallory := authz.newUser("app", "mallory")
	addr := createAccount(t, c, 0, alice)
	unknown := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	params := map[string]func(a common.Address) (string, any){
		api.MethodPersonalSign: func(a common.Address) (string, any) {
			return api.MethodPersonalSign, []any{"0x68656c6c6f", a.Hex()}
		},
		api.MethodSignTransaction: func(a common.Address) (string, any) {
			return api.MethodSignTransaction, []any{map[string]any{"from": a.Hex(), "to": unknown.Hex(), "chainId": "0x1", "nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1"}}
		},
	}
	for name, mk := range params {
		answer := func(a common.Address, proofs func(method string, p any) string) string {
			method, p := mk(a)
			err := c.call(1, proofs(method, p), method, p, nil)
			if err == nil {
				t.Fatalf("%s for %s signed", name, a.Hex())
			}
			return strings.ReplaceAll(err.Error(), a.Hex(), "ADDRESS")
		}
		for who, proofs := range map[string]func(method string, p any) string{
			"no proofs":        func(string, any) string { return "" },
			"garbage proofs":   func(string, any) string { return "bm90IGFuIGFwcHJvdmFs" },
			"mallory approves": func(method string, p any) string { return approveParams(t, mallory, method, p) },
		} {
			known, none := answer(addr, proofs), answer(unknown, proofs)
			if known != none {
				t.Errorf("%s, %s: alice's address gets %q, an unknown one %q", name, who, known, none)
			}
		}
	}
	// The owner still signs, and her approval for an unknown address gets
	// the same answer as mallory's for hers.
	method, p := params[api.MethodPersonalSign](addr)
	if err := c.call(1, approveParams(t, alice, method, p), method, p, nil); err != nil {
		t.Fatalf("alice signs: %v", err)
	}
	_, pu := params[api.MethodPersonalSign](unknown)
	err := c.call(1, approveParams(t, alice, method, pu), method, pu, nil)
	if code := apiCode(err); code != api.CodeAuthWrongScope || !strings.Contains(err.Error(), "holds no wallet") {
		t.Fatalf("alice, unknown address: %v", err)
	}
}
