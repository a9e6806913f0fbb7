package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
)

// run runs the command line and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut syncBuffer
	code := Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustRun runs the command line and fails the test unless it succeeds.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("keymesh %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

const permitJSON = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
  "Permit": [{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]
 },
 "primaryType": "Permit",
 "domain": {"name":"USD Coin","version":"2","chainId":"1337","verifyingContract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
 "message": {"owner":"%s","spender":"0x2222222222222222222222222222222222222222","value":"1000000000000000000000","nonce":"0","deadline":"1893456000"}
}`

// TestWalletEndToEnd runs a real 3-node cluster (keymesh dev, in process, on
// real sockets) and drives it through the CLI and the SDK: account create
// (DKG), sign message / typed-data / tx, the go-ethereum bind adapter
// sending a value transfer that the simulated chain executes, and a short
// keymesh bench sign. Every signature is checked with go-ethereum.
func TestWalletEndToEnd(t *testing.T) {
	dir := t.TempDir()
	text, _, stop := devRun(t, "--dir", filepath.Join(dir, "cluster"), "--base-port", fmt.Sprint(porttest.Block(t, 6)))
	defer stop()
	urls := map[string]string{}
	for _, m := range nodeLine.FindAllStringSubmatch(text, -1) {
		urls[m[1]] = m[2]
	}
	url := urls["1"]

	creds := filepath.Join(dir, "creds.json")
	out := mustRun(t, "account", "create", "--dev-setup", "--creds", creds, "--account", "alice", "--url", url, "--dev-dir", filepath.Join(dir, "cluster"))
	m := regexp.MustCompile(`(?m)^address\s+(0x[0-9a-fA-F]{40})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no address in:\n%s", out)
	}
	addr := common.HexToAddress(m[1])
	if !strings.Contains(out, "threshold  2 of 3") {
		t.Fatalf("account create output:\n%s", out)
	}
	st, err := os.Stat(creds)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, st.Mode())
	}
	// The dev cluster's root, as keymesh dev printed it, is in the
	// credentials file: sealed commands verify the quotes against it.
	root := regexp.MustCompile(`sim platform key ([0-9a-f]{64})`).FindStringSubmatch(text)
	var written credsFile
	if b, err := os.ReadFile(creds); err != nil || json.Unmarshal(b, &written) != nil || root == nil ||
		len(written.PlatformKeys) != 1 || written.PlatformKeys[0] != root[1] {
		t.Fatalf("platform key: dev printed %v, credentials file has %v", root, written.PlatformKeys)
	}
	if _, errOut, code := run(t, "account", "create", "--dev-setup", "--creds", creds, "--account", "bob", "--url", url); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("--dev-setup overwrote a credentials file: %d %s", code, errOut)
	}

	ctx := context.Background()

	t.Run("account list", func(t *testing.T) {
		if out := mustRun(t, "account", "list", "--creds", creds); strings.TrimSpace(out) != addr.Hex() {
			t.Fatalf("account list: %q, want %s", out, addr.Hex())
		}
		// Without --address, sign uses the account's first wallet.
		var f credsFile
		b, _ := os.ReadFile(creds)
		json.Unmarshal(b, &f)
		keyFile := filepath.Join(dir, "dev.key")
		os.WriteFile(keyFile, []byte(f.DeveloperKey+"\n"), 0o600)
		sig := strings.TrimSpace(mustRun(t, "sign", "message", "--url", url, "--key-file", keyFile, "--scope", f.Scope, "--account", "alice", "hi"))
		checkSig(t, addr, accounts.TextHash([]byte("hi")), sig)
	})

	t.Run("hybrid", func(t *testing.T) {
		// A hybrid scope: every request needs the developer's and the
		// user's approval. The credentials file holds both keys.
		cl, err := client.New(url)
		if err != nil {
			t.Fatal(err)
		}
		dev, _ := client.GenerateKey("p256")
		user, _ := client.GenerateKey("ed25519")
		sc, err := cl.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "hybrid", SessionTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.RegisterDelegated(ctx, dev, sc.ID, "carol", user.Public()); err != nil {
			t.Fatal(err)
		}
		both := filepath.Join(dir, "hybrid.json")
		if err := writeCreds(both, &credsFile{URL: url, Scope: sc.ID, Account: "carol", DeveloperKey: dev.MarshalPrivate(), UserKey: user.MarshalPrivate()}, false); err != nil {
			t.Fatal(err)
		}
		// (account create waits while the registration reaches the third node.)
		out := mustRun(t, "account", "create", "--creds", both)
		m := regexp.MustCompile(`(?m)^address\s+(0x[0-9a-fA-F]{40})$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no address in:\n%s", out)
		}
		sig := strings.TrimSpace(mustRun(t, "sign", "message", "--creds", both, "hybrid"))
		checkSig(t, common.HexToAddress(m[1]), accounts.TextHash([]byte("hybrid")), sig)

		// The developer's approval alone is refused, by code.
		devOnly := filepath.Join(dir, "dev-only.json")
		if err := writeCreds(devOnly, &credsFile{URL: url, Scope: sc.ID, Account: "carol", DeveloperKey: dev.MarshalPrivate(), Address: m[1]}, false); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, "sign", "message", "--creds", devOnly, "hybrid"); code == 0 || !strings.Contains(errOut, fmt.Sprint(api.CodeAuthIncomplete)) {
			t.Fatalf("developer approval alone in a hybrid scope: exit %d, %s", code, errOut)
		}
	})

	t.Run("sealed", func(t *testing.T) {
		// Requests sealed to the attested node keys (HPKE), the approval
		// inside the envelope: pinned measurement, trust on first use, and
		// the refusals.
		m := regexp.MustCompile(`measurement ([0-9a-f]{64})`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no measurement in the dev output:\n%s", text)
		}
		sig := strings.TrimSpace(mustRun(t, "sign", "message", "--creds", creds, "--measurement", m[1], "--allow-simulated", "sealed"))
		checkSig(t, addr, accounts.TextHash([]byte("sealed")), sig)
		out, errOut, code := run(t, "sign", "message", "--creds", creds, "--seal", "--allow-simulated", "tofu")
		if code != 0 || !strings.Contains(errOut, "warning") {
			t.Fatalf("--seal (trust on first use): exit %d, stderr %q", code, errOut)
		}
		checkSig(t, addr, accounts.TextHash([]byte("tofu")), strings.TrimSpace(out))
		if _, errOut, code := run(t, "sign", "message", "--creds", creds, "--measurement", strings.Repeat("0", 64), "--allow-simulated", "x"); code == 0 || !strings.Contains(errOut, "measurement") {
			t.Fatalf("another build's measurement accepted: %d %q", code, errOut)
		}
		if _, errOut, code := run(t, "sign", "message", "--creds", creds, "--measurement", m[1], "x"); code == 0 || !strings.Contains(strings.ToLower(errOut), "simulat") {
			t.Fatalf("simulated quote accepted without --allow-simulated: %d %q", code, errOut)
		}
		// Another cluster's root: the quotes do not verify.
		if _, errOut, code := run(t, "sign", "message", "--creds", creds, "--measurement", m[1], "--allow-simulated", "--platform-key", strings.Repeat("ab", 32), "x"); code == 0 || !strings.Contains(errOut, "trusted platform key") {
			t.Fatalf("another cluster's root accepted: %d %q", code, errOut)
		}
		// Another node's identity expected: the node's attestation is
		// refused and nothing is sealed to it.
		if _, errOut, code := run(t, "sign", "message", "--creds", creds, "--measurement", m[1], "--allow-simulated", "--node-identity", strings.Repeat("cd", 32), "x"); code == 0 || !strings.Contains(errOut, "another node") {
			t.Fatalf("another node's attestation accepted: %d %q", code, errOut)
		}
	})

	t.Run("sign message", func(t *testing.T) {
		sig := strings.TrimSpace(mustRun(t, "sign", "message", "--creds", creds, "hello keymesh"))
		checkSig(t, addr, accounts.TextHash([]byte("hello keymesh")), sig)
		sig = strings.TrimSpace(mustRun(t, "sign", "message", "--creds", creds, "--hex", "0xdeadbeef"))
		checkSig(t, addr, accounts.TextHash([]byte{0xde, 0xad, 0xbe, 0xef}), sig)
	})

	t.Run("sign typed data", func(t *testing.T) {
		f := filepath.Join(dir, "permit.json")
		js := fmt.Sprintf(permitJSON, addr.Hex())
		if err := os.WriteFile(f, []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
		sig := strings.TrimSpace(mustRun(t, "sign", "typed-data", "--creds", creds, "--file", f))
		var td apitypes.TypedData
		if err := json.Unmarshal([]byte(js), &td); err != nil {
			t.Fatal(err)
		}
		h, _, err := apitypes.TypedDataAndHash(td)
		if err != nil {
			t.Fatal(err)
		}
		checkSig(t, addr, h, sig)
	})

	// A chain that knows the wallet: go-ethereum's simulated backend.
	sim := simulated.NewBackend(types.GenesisAlloc{addr: {Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))}})
	defer sim.Close()
	eth := sim.Client()
	chainID, err := eth.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bind adapter", func(t *testing.T) {
		acct := sdkAccount(t, creds)
		opts, err := acct.TransactOpts(ctx, chainID)
		if err != nil {
			t.Fatal(err)
		}
		to := common.HexToAddress("0x00000000000000000000000000000000000b0b01")
		opts.Value = big.NewInt(1234567)
		opts.GasLimit = 21000 // bind would estimate it only for a contract with code
		// A plain value transfer through a bound "contract" at an EOA: bind
		// fills the nonce and EIP-1559 fees from the chain, and signs
		// through the cluster.
		// The ABI only says the recipient takes plain transfers.
		recv, err := abi.JSON(strings.NewReader(`[{"type":"receive","stateMutability":"payable"}]`))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := bind.NewBoundContract(to, recv, eth, eth, eth).Transfer(opts)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Type() != types.DynamicFeeTxType {
			t.Fatalf("bind made a type %d transaction", tx.Type())
		}
		sim.Commit()
		rcpt, err := eth.TransactionReceipt(ctx, tx.Hash())
		if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction not executed: %v %+v", err, rcpt)
		}
		bal, err := eth.BalanceAt(ctx, to, nil)
		if err != nil || bal.Cmp(big.NewInt(1234567)) != 0 {
			t.Fatalf("recipient balance %v, %v", bal, err)
		}
	})

	t.Run("sign tx", func(t *testing.T) {
		nonce, err := eth.PendingNonceAt(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		to := common.HexToAddress("0x00000000000000000000000000000000000b0b02")
		head, err := eth.HeaderByNumber(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		maxFee := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(1e9))
		txJSON := fmt.Sprintf(`{"type":"0x2","chainId":"%s","nonce":"%s","to":"%s","value":"0x2a","gas":"0x5208","maxFeePerGas":"%s","maxPriorityFeePerGas":"0x3b9aca00"}`,
			hexutil.EncodeBig(chainID), hexutil.EncodeUint64(nonce), to.Hex(), hexutil.EncodeBig(maxFee))
		f := filepath.Join(dir, "tx.json")
		if err := os.WriteFile(f, []byte(txJSON), 0o600); err != nil {
			t.Fatal(err)
		}
		raw := strings.TrimSpace(mustRun(t, "sign", "tx", "--creds", creds, "--file", f))
		b, err := hexutil.Decode(raw)
		if err != nil {
			t.Fatalf("output %q: %v", raw, err)
		}
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if err := eth.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		sim.Commit()
		bal, err := eth.BalanceAt(ctx, to, nil)
		if err != nil || bal.Cmp(big.NewInt(42)) != 0 {
			t.Fatalf("recipient balance %v, %v", bal, err)
		}

		// Malformed files are refused before anything is sent, and say why.
		for name, tc := range map[string]struct{ json, want string }{
			"bad quantity":  {`{"type":"0x2","chainId":"1337","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1"}`, "chainId"},
			"unknown field": {`{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","colour":"red"}`, "unknown field"},
			"from other":    {`{"from":"0x1111111111111111111111111111111111111111","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}`, "not the account's address"},
			"not json":      {`nope`, "not a transaction request"},
		} {
			if err := os.WriteFile(f, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, errOut, code := run(t, "sign", "tx", "--creds", creds, "--file", f); code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s: exit %d, stderr %q, want %q", name, code, errOut, tc.want)
			}
		}
	})

	t.Run("bench", func(t *testing.T) {
		n := 50
		if raceEnabled {
			n = 16
		}
		// The metrics are on node 1's metrics listener, as keymesh dev
		// printed it, not on its API port.
		metrics := regexp.MustCompile(`(?m)^node 1: .*metrics (http://127\.0\.0\.1:\d+/metrics)\)$`).FindStringSubmatch(text)
		if metrics == nil {
			t.Fatalf("keymesh dev did not print node 1's metrics URL:\n%s", text)
		}
		out := mustRun(t, "bench", "sign", "--creds", creds, "--requests", fmt.Sprint(n), "--concurrency", "8", "--progress", "none", "--metrics-url", metrics[1])
		if !regexp.MustCompile(`(?m)^node CPU     [0-9.]+ s in 1 node process\(es\) behind --url \([0-9.]+ ms per signature\)$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^client CPU   [0-9.]+ s \([0-9.]+ ms per signature\)$`).MatchString(out) {
			t.Fatalf("no CPU lines:\n%s", out)
		}
		if !strings.Contains(out, fmt.Sprintf("requests     %d (%d ok, 0 failed)", n, n)) || !strings.Contains(out, "errors       none") || !strings.Contains(out, addr.Hex()) {
			t.Fatalf("bench output:\n%s", out)
		}
		// A gateway that is down: its share of the requests fail, counted by
		// kind; the others succeed.
		dead := fmt.Sprintf("http://127.0.0.1:%d", porttest.Block(t, 6))
		out = mustRun(t, "bench", "sign", "--creds", creds, "--url", url+","+dead, "--requests", "8", "--concurrency", "2", "--progress", "none")
		if !strings.Contains(out, "requests     8 (4 ok, 4 failed)") || !strings.Contains(out, "4 × network: connection refused") {
			t.Fatalf("bench with a dead gateway:\n%s", out)
		}

		// Spread over two gateways, by duration, with a fresh wallet (made
		// through the API: scope, registration, DKG), except under the race
		// detector where a DKG takes seconds.
		args := []string{"bench", "sign", "--url", url + "," + urls["2"], "--duration", "1s", "--concurrency", "4", "--progress", "lines"}
		setup := "created scope"
		if raceEnabled {
			args = append(args, "--creds", creds)
			setup = ""
		}
		out, errOut, code := run(t, args...)
		if code != 0 || !regexp.MustCompile(`requests     \d+ \(\d+ ok, 0 failed\)`).MatchString(out) || !strings.Contains(errOut, setup) {
			t.Fatalf("bench --duration: exit %d\n%s\n%s", code, out, errOut)
		}
	})
}

// TestClassifyError checks the kinds the error table groups failures by.
func TestClassifyError(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("client: personal_sign: %w", api.Errorf(api.CodeUnavailable, "signing needs 2 nodes; 1 reachable")): "rpc -32002: signing needs 2 nodes; 1 reachable",
		fmt.Errorf("x: %w", client.ErrBadSignature):                                          "bad signature",
		context.DeadlineExceeded:                                                             "timeout",
		fmt.Errorf("y: %w", context.Canceled):                                                "canceled",
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}: "network: connection refused",
		errors.New("strange"):                                                                "other: strange",
	} {
		if got := classifyError(err); got != want {
			t.Errorf("%v: %q, want %q", err, got, want)
		}
	}
	long := api.Errorf(api.CodeRejected, "%s", strings.Repeat("x", 200))
	if got := classifyError(long); len(got) > 110 {
		t.Errorf("long message not clipped: %d bytes", len(got))
	}
}

// sdkAccount builds an SDK account from a credentials file.
func sdkAccount(t *testing.T, path string) *client.Account {
	t.Helper()
	c := creds{file: path, timeout: time.Minute}
	a, err := c.signer(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func checkSig(t *testing.T, addr common.Address, digest []byte, hexSig string) {
	t.Helper()
	sig, err := hexutil.Decode(hexSig)
	if err != nil {
		t.Fatalf("signature %q: %v", hexSig, err)
	}
	if err := client.VerifySignature(addr, [32]byte(digest), sig); err != nil {
		t.Fatal(err)
	}
}
