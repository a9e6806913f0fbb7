package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
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
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/wallet"
)

// walletUser is an account of a user-mode scope, registered by the scope's
// developer with the user's own key credential: the user's key approves.
type walletUser struct {
	scope, account string
	signer         *client.KeySigner
}

// approve returns fresh proofs for method over (addr, digest).
func (u *walletUser) approve(t testing.TB, method string, addr common.Address, digest [32]byte) string {
	t.Helper()
	h, err := u.signer.Approve(context.Background(), client.Operation{Scope: u.scope, Account: u.account, Method: method, Hash: api.OperationHash(method, addr, digest)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// approveParams approves a signing request, computing its digest from the
// params as every node does.
func (u *walletUser) approveParams(t testing.TB, method string, params any) string {
	t.Helper()
	raw, err := jsonMarshal(params)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wallet.Prepare(method, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u.approve(t, method, p.Address, p.Digest)
}

// walletScopeConfig is the config of the scopes newWalletScope creates.
var walletScopeConfig = client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "user", SessionTTL: time.Hour}

// newWalletScope creates a user-mode scope through node 1 and registers
// accounts in it, and waits until every node has them (records replicate).
func newWalletScope(t testing.TB, clients []*client.Client, accountIDs ...string) (*client.Key, []*walletUser) {
	t.Helper()
	return newWalletScopeConfig(t, clients, walletScopeConfig, accountIDs...)
}

// newWalletScopeConfig is newWalletScope with the scope config cfg.
func newWalletScopeConfig(t testing.TB, clients []*client.Client, cfg client.ScopeConfig, accountIDs ...string) (*client.Key, []*walletUser) {
	t.Helper()
	ctx := context.Background()
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := clients[0].CreateScope(ctx, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sc.AllowRawDigest != cfg.AllowRawDigest {
		t.Fatalf("created scope %+v: allowRawDigest, want %v", sc, cfg.AllowRawDigest)
	}
	var users []*walletUser
	for _, id := range accountIDs {
		key, err := client.GenerateKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clients[0].RegisterDelegated(ctx, dev, sc.ID, id, key.Public()); err != nil {
			t.Fatal(err)
		}
		users = append(users, &walletUser{scope: sc.ID, account: id, signer: client.UserKeySigner(key, sc.ID, id)})
	}
	// Wait until every node accepts the last user's approval (its records
	// have reached every store).
	last := users[len(users)-1]
	for _, c := range clients {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var out []string
			err := c.Call(client.WithProofs(ctx, last.approve(t, api.MethodAccounts, common.Address{}, [32]byte{})), api.MethodAccounts, nil, &out)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("account records on every node: not within 10 s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return dev, users
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func recoverEth(t *testing.T, digest, sig []byte) common.Address {
	t.Helper()
	if len(sig) != 65 || sig[64] != 27 && sig[64] != 28 {
		t.Fatalf("signature %x: want r ‖ s ‖ v with v ∈ {27, 28}", sig)
	}
	s := bytes.Clone(sig)
	s[64] -= 27
	pub, err := ethcrypto.SigToPub(digest, s)
	if err != nil {
		t.Fatal(err)
	}
	return ethcrypto.PubkeyToAddress(*pub)
}

// TestWallet runs the wallet on real nodes with real auth: a user-mode
// scope whose user approves with her own key, approvals checked by every
// signing node's auth service against records replicated to it.
func TestWallet(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}
	dev, users := newWalletScope(t, tc.clients, "alice", "mallory")
	alice, mallory := users[0], users[1]

	var created api.CreateAccountResult
	proofs := alice.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})
	if err := tc.clients[1].Call(client.WithProofs(ctx, proofs), api.MethodCreateAccount, api.CreateAccountParams{Scope: alice.scope, Account: alice.account}, &created); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	addr := common.HexToAddress(created.Address)
	for i := range tc.nodes {
		var got []string
		if err := tc.clients[i].Call(client.WithProofs(ctx, alice.approve(t, api.MethodAccounts, common.Address{}, [32]byte{})), api.MethodAccounts, nil, &got); err != nil || len(got) != 1 || got[0] != created.Address {
			t.Fatalf("node %d: eth_accounts = %v, %v", i+1, got, err)
		}
	}

	personal := func(node int, u *walletUser, msg []byte) ([]byte, error) {
		params := []any{hexutil.Encode(msg), addr.Hex()}
		var sig string
		err := tc.clients[node].Call(client.WithProofs(ctx, u.approveParams(t, api.MethodPersonalSign, params)), api.MethodPersonalSign, params, &sig)
		if err != nil {
			return nil, err
		}
		return hexutil.Decode(sig)
	}
	for node := range 3 {
		msg := []byte("signed through node " + string(rune('1'+node)))
		sig, err := personal(node, alice, msg)
		if err != nil {
			t.Fatalf("personal_sign via node %d: %v", node+1, err)
		}
		if got := recoverEth(t, accounts.TextHash(msg), sig); got != addr {
			t.Fatalf("personal_sign via node %d recovers to %s, want %s", node+1, got.Hex(), addr.Hex())
		}
	}

	// The signatures are counted in the gateways' metrics.
	{
		resp, err := http.Get(tc.nodes[0].MetricsURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "keymesh_wallet_signatures_total 1") {
			t.Errorf("node 1 /metrics lacks keymesh_wallet_signatures_total 1")
		}
	}

	// EIP-712 permit.
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
			"Permit":       {{Name: "owner", Type: "address"}, {Name: "spender", Type: "address"}, {Name: "value", Type: "uint256"}, {Name: "nonce", Type: "uint256"}, {Name: "deadline", Type: "uint256"}},
		},
		PrimaryType: "Permit",
		Domain:      apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", ChainId: math.NewHexOrDecimal256(1), VerifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
		Message:     apitypes.TypedDataMessage{"owner": addr.Hex(), "spender": "0x1111111254EEB25477B68fb85Ed929f73A960582", "value": "1000000", "nonce": "0", "deadline": "1893456000"},
	}
	{
		params := []any{addr.Hex(), td}
		var sig string
		if err := tc.clients[2].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodSignTypedDataV4, params)), api.MethodSignTypedDataV4, params, &sig); err != nil {
			t.Fatal(err)
		}
		digest, _, _ := apitypes.TypedDataAndHash(td)
		if got := recoverEth(t, digest, hexutil.MustDecode(sig)); got != addr {
			t.Fatalf("permit recovers to %s", got.Hex())
		}
	}

	// An EIP-1559 transfer executed by go-ethereum's simulated chain.
	{
		ether := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
		sim := simulated.NewBackend(types.GenesisAlloc{addr: {Balance: ether}})
		defer sim.Close()
		ec := sim.Client()
		chainID, _ := ec.ChainID(ctx)
		head, err := ec.HeaderByNumber(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tip := big.NewInt(1e9)
		fee := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
		to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
		params := []any{map[string]any{"from": addr.Hex(), "to": to.Hex(), "chainId": hexutil.EncodeBig(chainID), "nonce": "0x0", "gas": "0x5208",
			"maxFeePerGas": hexutil.EncodeBig(fee), "maxPriorityFeePerGas": hexutil.EncodeBig(tip), "value": "0x2a"}}
		var raw string
		if err := tc.clients[0].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodSignTransaction, params)), api.MethodSignTransaction, params, &raw); err != nil {
			t.Fatal(err)
		}
		var tx types.Transaction
		if err := tx.UnmarshalBinary(hexutil.MustDecode(raw)); err != nil || tx.Type() != types.DynamicFeeTxType {
			t.Fatalf("signed tx: type %d, %v", tx.Type(), err)
		}
		if err := ec.SendTransaction(ctx, &tx); err != nil {
			t.Fatalf("the chain refuses the transaction: %v", err)
		}
		sim.Commit()
		eventually(t, "recipient balance", func() error {
			bal, err := ec.BalanceAt(ctx, to, nil)
			if err != nil {
				return err
			}
			if bal.Cmp(big.NewInt(42)) != 0 {
				return errors.New("balance " + bal.String())
			}
			return nil
		})
	}

	// Approvals that do not approve this operation: every one refused, with
	// auth's code for why.
	msg := []byte("pay mallory")
	params := []any{hexutil.Encode(msg), addr.Hex()}
	devSigner := client.DeveloperSigner(dev, alice.scope)
	devProofs, _ := devSigner.Approve(ctx, client.Operation{Scope: alice.scope, Account: alice.account, Method: api.MethodPersonalSign, Hash: api.OperationHash(api.MethodPersonalSign, addr, [32]byte(accounts.TextHash(msg)))})
	replayed := alice.approveParams(t, api.MethodPersonalSign, params)
	if err := tc.clients[0].Call(client.WithProofs(ctx, replayed), api.MethodPersonalSign, params, nil); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		proofs string
		code   int
	}{
		"another account's approval":  {mallory.approveParams(t, api.MethodPersonalSign, params), api.CodeAuthWrongScope},
		"approval of another message": {alice.approveParams(t, api.MethodPersonalSign, []any{hexutil.Encode([]byte("hello")), addr.Hex()}), api.CodeAuthWrongOperation},
		"developer in a user scope":   {devProofs, api.CodeAuthIncomplete},
		"replayed approval":           {replayed, api.CodeAuthReplay},
	} {
		err := tc.clients[1].Call(client.WithProofs(ctx, tt.proofs), api.MethodPersonalSign, params, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tt.code {
			t.Errorf("%s: got %v, want code %d", name, err, tt.code)
		}
	}

	checkRawDigest(t, tc, dev, alice, addr)

	// A malicious gateway (node 1) forwards straight to node 2, over the peer
	// transport, an operation the user did not approve: a transaction swapped
	// after she approved another, and an approval forged by another account.
	// Node 2 checks with its own auth and refuses before any protocol message.
	txParams := func(to string) []any {
		return []any{map[string]any{"from": addr.Hex(), "to": to, "chainId": "0x1", "nonce": "0x5", "gas": "0x5208", "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1", "value": "0x1"}}
	}
	approvedTx := txParams("0x000000000000000000000000000000000000bEEF")
	swappedTx := txParams("0x0000000000000000000000000000000000000bAd")
	for name, f := range map[string]struct {
		sent   any
		proofs string
		code   int
	}{
		"tx swapped after approval":          {swappedTx, alice.approveParams(t, api.MethodSignTransaction, approvedTx), api.CodeAuthWrongOperation},
		"approval forged by another account": {swappedTx, mallory.approveParams(t, api.MethodSignTransaction, swappedTx), api.CodeAuthWrongScope},
	} {
		raw, _ := json.Marshal(f.sent)
		var req [16]byte
		var nonce [32]byte
		req[0], nonce[0] = 1, 1
		_, err := tc.nodes[0].Transport().Call(ctx, 2, wallet.KindSign, wallet.EncodeSignInvite(api.MethodSignTransaction, raw, f.proofs, req, nonce, []uint16{1, 2}))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("[%d]", f.code)) {
			t.Errorf("%s: node 2 answered %v, want a refusal with code %d", name, err, f.code)
		}
	}

	// One of three stopped: signs; two stopped: fails fast; back: signs.
	tc.stop(2)
	if _, err := personal(0, alice, []byte("n3 down")); err != nil {
		t.Fatalf("node 3 down: %v", err)
	}
	tc.stop(1)
	wantReady(t, tc.nodes[0], 503, 2, 3)
	t0 := time.Now()
	_, err := personal(0, alice, []byte("n2, n3 down"))
	if apiCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "nodes down: [2 3]") || time.Since(t0) > time.Second {
		t.Fatalf("two nodes down: %v after %v", err, time.Since(t0))
	}
	tc.restart(1)
	wantReady(t, tc.nodes[0], 200, 3)
	msg = []byte("n2 back")
	sig, err := personal(1, alice, msg)
	if err != nil {
		t.Fatalf("node 2 back: %v", err)
	}
	if got := recoverEth(t, accounts.TextHash(msg), sig); got != addr {
		t.Fatalf("node 2 back: recovers to %s", got.Hex())
	}
}

// checkRawDigest: keymesh_signDigest is refused for alice's scope, whose
// config does not allow raw digests, and signs, on every gateway, for a scope
// created with AllowRawDigest and for alice's scope once its developer
// updates the config to allow them.
func checkRawDigest(t *testing.T, tc *testCluster, dev *client.Key, alice *walletUser, addr common.Address) {
	t.Helper()
	ctx := context.Background()
	signDigest := func(node int, u *walletUser, a common.Address, digest [32]byte) ([]byte, error) {
		params := api.SignDigestParams{Address: a.Hex(), Digest: hexutil.Encode(digest[:])}
		var res api.SignatureResult
		if err := tc.clients[node].Call(client.WithProofs(ctx, u.approveParams(t, api.MethodSignDigest, params)), api.MethodSignDigest, params, &res); err != nil {
			return nil, err
		}
		return hexutil.Decode(res.Signature)
	}
	digest := [32]byte(ethcrypto.Keccak256([]byte("a raw digest")))
	for node := range 3 {
		_, err := signDigest(node, alice, addr, digest)
		if apiCode(err) != api.CodeRejected || !strings.Contains(err.Error(), "not enabled for scope") {
			t.Fatalf("signDigest via node %d in a scope without raw digests: %v, want code %d", node+1, err, api.CodeRejected)
		}
	}
	if sc, err := tc.clients[2].GetScope(ctx, alice.scope); err != nil || sc.AllowRawDigest {
		t.Fatalf("alice's scope: %+v, %v", sc, err)
	}

	rawCfg := walletScopeConfig
	rawCfg.AllowRawDigest = true
	_, users := newWalletScopeConfig(t, tc.clients, rawCfg, "dora")
	dora := users[0]
	eventually(t, "the raw-digest scope on node 3", func() error {
		sc, err := tc.clients[2].GetScope(ctx, dora.scope)
		if err != nil {
			return err
		}
		if !sc.AllowRawDigest {
			return fmt.Errorf("scope %+v does not allow raw digests", sc)
		}
		return nil
	})
	var created api.CreateAccountResult
	if err := tc.clients[0].Call(client.WithProofs(ctx, dora.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})), api.MethodCreateAccount, api.CreateAccountParams{Scope: dora.scope, Account: dora.account}, &created); err != nil {
		t.Fatalf("createAccount in the raw-digest scope: %v", err)
	}
	doraAddr := common.HexToAddress(created.Address)
	for node := range 3 {
		sig, err := signDigest(node, dora, doraAddr, digest)
		if err != nil {
			t.Fatalf("signDigest via node %d in a scope with raw digests: %v", node+1, err)
		}
		if got := recoverEth(t, digest[:], sig); got != doraAddr {
			t.Fatalf("signDigest via node %d recovers to %s, want %s", node+1, got.Hex(), doraAddr.Hex())
		}
	}

	// The developer turns raw digests on for alice's scope: every node
	// reads the scope's current config, so alice signs once the update has
	// reached the signing nodes.
	upd := walletScopeConfig
	upd.AllowRawDigest = true
	sc, err := tc.clients[0].UpdateScope(ctx, dev, alice.scope, 1, upd)
	if err != nil || !sc.AllowRawDigest {
		t.Fatalf("UpdateScope: %+v, %v", sc, err)
	}
	eventually(t, "alice signs a raw digest after the update", func() error {
		sig, err := signDigest(1, alice, addr, digest)
		if err != nil {
			return err
		}
		if got := recoverEth(t, digest[:], sig); got != addr {
			return fmt.Errorf("alice's raw digest recovers to %s, want %s", got.Hex(), addr.Hex())
		}
		return nil
	})
}

// checkSealedScope: a sealed personal_sign whose envelope is bound to
// another scope than the account's is refused by the node with
// CodeAuthWrongScope, although its approval is good; the same call bound to
// the account's scope signs for addr.
func checkSealedScope(t *testing.T, c *client.Client, ap client.Approver, scope, account string, addr common.Address) {
	t.Helper()
	ctx := context.Background()
	msg := []byte("sealed for one scope")
	params := []any{hexutil.Encode(msg), addr.Hex()}
	approve := func() string {
		h, err := ap.Approve(ctx, client.Operation{Scope: scope, Account: account, Method: api.MethodPersonalSign,
			Hash: api.OperationHash(api.MethodPersonalSign, addr, [32]byte(accounts.TextHash(msg)))})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	other := strings.Repeat("ab", 16)
	err := c.Call(client.WithProofs(client.WithScope(ctx, other), approve()), api.MethodPersonalSign, params, nil)
	if apiCode(err) != api.CodeAuthWrongScope {
		t.Fatalf("personal_sign sealed for scope %s in scope %s: %v, want code %d", other, scope, err, api.CodeAuthWrongScope)
	}
	var sig string
	if err := c.Call(client.WithProofs(client.WithScope(ctx, scope), approve()), api.MethodPersonalSign, params, &sig); err != nil {
		t.Fatalf("personal_sign sealed for its scope: %v", err)
	}
	if got := recoverEth(t, accounts.TextHash(msg), hexutil.MustDecode(sig)); got != addr {
		t.Fatalf("sealed personal_sign recovers to %s, want %s", got.Hex(), addr.Hex())
	}
}
