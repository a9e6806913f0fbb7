package ethprep

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keymesh/keymesh/api"
)

func TestTypedDataKnownAnswer(t *testing.T) {
	raw, err := os.ReadFile("testdata/eip712-mail.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := TypedDataHash(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(d[:]), "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"; got != want {
		t.Fatalf("EIP-712 example digest %s, want %s", got, want)
	}
	// MetaMask's form: a JSON string holding the object.
	s, _ := json.Marshal(string(raw))
	if d2, err := TypedDataHash(s); err != nil || d2 != d {
		t.Fatalf("typed data as a string: %v", err)
	}
}

// TestTypedDataStrict: what a lenient decoder would take and hash (or hash
// differently) is refused, with the code a node answers.
func TestTypedDataStrict(t *testing.T) {
	raw, err := os.ReadFile("testdata/eip712-mail.json")
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var o map[string]any
		json.Unmarshal(raw, &o)
		f(o)
		b, _ := json.Marshal(o)
		return b
	}
	cases := map[string]struct {
		in   []byte
		code int
	}{
		"unknown member":        {edit(func(o map[string]any) { o["primaryTypes"] = "Person" }), api.CodeInvalidParams},
		"unknown domain member": {edit(func(o map[string]any) { o["domain"].(map[string]any)["chain"] = 5 }), api.CodeInvalidParams},
		"unknown type member": {edit(func(o map[string]any) {
			o["types"].(map[string]any)["Person"].([]any)[0].(map[string]any)["kind"] = "x"
		}), api.CodeInvalidParams},
		"no primaryType":                {edit(func(o map[string]any) { delete(o, "primaryType") }), api.CodeInvalidParams},
		"no types":                      {edit(func(o map[string]any) { delete(o, "types") }), api.CodeInvalidParams},
		"trailing object":               {append(append([]byte{}, raw...), []byte(`{}`)...), api.CodeInvalidParams},
		"trailing bracket":              {append(append([]byte{}, raw...), ']'), api.CodeInvalidParams},
		"array":                         {[]byte(`[]`), api.CodeInvalidParams},
		"too big":                       {[]byte(`"` + strings.Repeat(" ", api.MaxTypedDataBytes+1) + `"`), api.CodeLimitExceeded},
		"domain member in another case": {edit(func(o map[string]any) { o["domain"].(map[string]any)["ChainID"] = 5 }), api.CodeInvalidParams},
		"duplicate message member":      {[]byte(strings.Replace(string(raw), `"contents": "Hello, Bob!"`, `"contents": "Hello, Bob!", "contents": "Pay Eve"`, 1)), api.CodeInvalidParams},
		"duplicate domain member":       {[]byte(strings.Replace(string(raw), `"chainId": 1,`, `"chainId": 1, "chainId": 5,`, 1)), api.CodeInvalidParams},
		"undefined type":                {edit(func(o map[string]any) { o["primaryType"] = "Letter" }), api.CodeInvalidInput},
	}
	for name, tc := range cases {
		_, err := TypedDataHash(tc.in)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code {
			t.Errorf("%s: got %v, want code %d", name, err, tc.code)
		}
	}
}

func TestPersonal(t *testing.T) {
	for data, want := range map[string]string{"0x68656c6c6f": "hello", "hello": "hello", "0x": ""} {
		msg, err := PersonalMessage(data)
		if err != nil || string(msg) != want {
			t.Fatalf("PersonalMessage(%q) = %q, %v", data, msg, err)
		}
	}
	d, err := PersonalDigest([]byte("hello"))
	if err != nil || d != [32]byte(accounts.TextHash([]byte("hello"))) {
		t.Fatal("EIP-191 digest differs")
	}
	for _, bad := range []string{"0x123", "0xzz", "\xff"} {
		if _, err := PersonalMessage(bad); err == nil {
			t.Errorf("PersonalMessage(%q) accepted", bad)
		}
	}
	if _, err := PersonalDigest(make([]byte, api.MaxMessageBytes+1)); err == nil {
		t.Error("oversized message accepted")
	}
}

func sp(s string) *string { return &s }

func baseTx() api.TransactionRequest {
	return api.TransactionRequest{ChainID: sp("0x1"), Nonce: sp("0x0"), Gas: sp("0x5208"),
		MaxFeePerGas: sp("0x2"), MaxPriorityFeePerGas: sp("0x1"), To: sp("0x3333333333333333333333333333333333333333")}
}

// TestBuildTxRefuses: each request is refused with the code a node gives.
func TestBuildTxRefuses(t *testing.T) {
	big := "0x" + strings.Repeat("00", api.MaxTxDataBytes+1)
	cases := map[string]struct {
		mod  func(*api.TransactionRequest)
		code int
	}{
		"tip above fee cap (EIP-1559)": {func(r *api.TransactionRequest) { r.MaxPriorityFeePerGas = sp("0x3") }, api.CodeInvalidInput},
		"zero chain (EIP-155)":         {func(r *api.TransactionRequest) { r.ChainID = sp("0x0") }, api.CodeInvalidInput},
		"no chain":                     {func(r *api.TransactionRequest) { r.ChainID = nil }, api.CodeInvalidParams},
		"data over limit":              {func(r *api.TransactionRequest) { r.Data = &big }, api.CodeLimitExceeded},
		"access list over limit": {func(r *api.TransactionRequest) {
			r.AccessList = []api.AccessTuple{{Address: *r.To, StorageKeys: make([]string, api.MaxAccessListItems)}}
			for i := range r.AccessList[0].StorageKeys {
				r.AccessList[0].StorageKeys[i] = common.Hash{}.Hex()
			}
		}, api.CodeLimitExceeded},
		"bad from":      {func(r *api.TransactionRequest) { r.From = sp("0x12") }, api.CodeInvalidParams},
		"blob type":     {func(r *api.TransactionRequest) { r.Type = sp("0x3") }, api.CodeInvalidInput},
		"1559 gasPrice": {func(r *api.TransactionRequest) { r.GasPrice = sp("0x1") }, api.CodeInvalidParams},
	}
	if _, err := BuildTx(ptr(baseTx()), nil); err != nil {
		t.Fatalf("base request: %v", err)
	}
	for name, tc := range cases {
		r := baseTx()
		tc.mod(&r)
		_, err := BuildTx(&r, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code {
			t.Errorf("%s: got %v, want code %d", name, err, tc.code)
		}
	}
	if _, err := BuildTx(ptr(baseTx()), []uint64{5, 1337}); err == nil {
		t.Error("chain 1 accepted by a node signing for 5 and 1337")
	}
	if _, err := BuildTx(ptr(baseTx()), []uint64{5, 1}); err != nil {
		t.Errorf("chain 1 refused by a node signing for it: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeTxRequestStrict(t *testing.T) {
	for name, in := range map[string]string{
		"unknown member": `{"chainId":"0x1","colour":"red"}`,
		"trailing":       `{"chainId":"0x1"} {}`,
		"not an object":  `"0x1"`,
		"wrong type":     `{"chainId":1}`,
		// encoding/json alone would take these: the last of two, a name in
		// another case; a JavaScript reader takes the first, or neither.
		"duplicate member":       `{"chainId":"0x1","chainId":"0x5"}`,
		"member in another case": `{"ChainId":"0x5"}`,
		"access list case":       `{"accessList":[{"Address":"0x3333333333333333333333333333333333333333","storageKeys":[]}]}`,
		"too deep":               `{"accessList":` + strings.Repeat("[", 1200) + strings.Repeat("]", 1200) + `}`,
	} {
		if _, err := DecodeTxRequest([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r, err := DecodeTxRequest([]byte(" {\"chainId\":\"0x1\"}\n"))
	if err != nil || *r.ChainID != "0x1" {
		t.Fatalf("valid request: %v", err)
	}
}

// TestTxRoundTrip: TxRequest and BuildTx are inverses for each envelope.
func TestTxRoundTrip(t *testing.T) {
	chainID := big.NewInt(1337)
	to := common.HexToAddress("0x3333333333333333333333333333333333333333")
	from := common.HexToAddress("0x4444444444444444444444444444444444444444")
	al := types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}
	for name, tx := range map[string]*types.Transaction{
		"legacy":   types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(7), Gas: 21000, To: &to, Value: big.NewInt(5)}),
		"2930":     types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: 2, GasPrice: big.NewInt(7), Gas: 30000, To: &to, AccessList: al}),
		"2930 nil": types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: 2, GasPrice: big.NewInt(7), Gas: 30000, To: &to}),
		"1559":     types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(9), Gas: 50000, Data: []byte{1, 2}, AccessList: al}),
	} {
		req, err := TxRequest(from, tx, chainID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := BuildTx(&req, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := types.LatestSignerForChainID(chainID)
		if got.Tx.Type() != tx.Type() || got.Digest() != s.Hash(tx) || *got.From != from {
			t.Fatalf("%s: round trip changed the transaction", name)
		}
	}
}

// FuzzDecodeTxRequest feeds eth_signTransaction objects to the decoder and
// builder: no panic; every error is an *api.Error; a decoded request
// re-encodes to one that decodes the same; a built transaction converts
// back (TxRequest) to a request that builds the same signing hash.
func FuzzDecodeTxRequest(f *testing.F) {
	f.Add([]byte(`{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","input":"0x","data":"0x"}`))
	f.Add([]byte(`{"type":"0x2","chainId":"0x539","nonce":"0x3","gas":"0xc350","maxFeePerGas":"0x9","maxPriorityFeePerGas":"0x1","accessList":[]}`))
	f.Add([]byte(`{"type":"0x7","chainId":"0x1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeTxRequest(b)
		var ae *api.Error
		if err != nil {
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *api.Error: %v", err)
			}
			return
		}
		again, _ := json.Marshal(r)
		r2, err := DecodeTxRequest(again)
		if r2 != nil && r2.AccessList == nil && r.AccessList != nil && len(r.AccessList) == 0 {
			r2.AccessList = r.AccessList // api's omitempty drops an empty list
		}
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoded request decodes differently: %v", err)
		}
		built, err := BuildTx(r, nil)
		if err != nil {
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *api.Error: %v", err)
			}
			return
		}
		if built.Tx.Type() == types.DynamicFeeTxType && built.Tx.GasTipCap().Cmp(built.Tx.GasFeeCap()) > 0 {
			t.Fatal("built an EIP-1559 transaction whose tip exceeds its fee cap")
		}
		from := common.Address{4}
		back, err := TxRequest(from, built.Tx, built.ChainID)
		if err != nil {
			t.Fatalf("built transaction does not convert back: %v", err)
		}
		rebuilt, err := BuildTx(&back, nil)
		if err != nil {
			t.Fatalf("round trip refused: %v", err)
		}
		if rebuilt.ChainID.Cmp(built.ChainID) != 0 || rebuilt.Tx.Type() != built.Tx.Type() || rebuilt.Digest() != built.Digest() {
			t.Fatal("round trip changed the transaction")
		}
	})
}

// FuzzTypedDataHash: typed data never panics the hasher, every error is an
// *api.Error, and the string form hashes as the object form.
func FuzzTypedDataHash(f *testing.F) {
	if raw, err := os.ReadFile("testdata/eip712-mail.json"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte(`{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := TypedDataHash(b)
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *api.Error: %v", err)
			}
			return
		}
		s, _ := json.Marshal(string(b))
		if d2, err := TypedDataHash(s); err != nil || d2 != d {
			t.Fatalf("string form hashes differently: %v", err)
		}
	})
}
