package client_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/wallet"
)

// TestSDKRefusesWhatNodeRefuses: the SDK and the node prepare requests by
// one set of rules (package ethprep), so a request the SDK would approve is
// one a node signs. Each case is one the two had drifted on — the SDK built
// or hashed it, the node refused it, so the user approved an operation no
// node would sign — and is now refused by both, with the same code.
func TestSDKRefusesWhatNodeRefuses(t *testing.T) {
	from := "0x4444444444444444444444444444444444444444"
	s := func(v string) *string { return &v }
	tx := func(mod func(*api.TransactionRequest)) api.TransactionRequest {
		r := api.TransactionRequest{From: s(from), ChainID: s("0x1"), Nonce: s("0x0"), Gas: s("0x5208"),
			MaxFeePerGas: s("0x2"), MaxPriorityFeePerGas: s("0x1"), To: s("0x3333333333333333333333333333333333333333")}
		mod(&r)
		return r
	}
	txCases := map[string]api.TransactionRequest{
		// EIP-1559: max_priority_fee_per_gas must not exceed max_fee_per_gas.
		"tip above fee cap": tx(func(r *api.TransactionRequest) { r.MaxPriorityFeePerGas = s("0x3") }),
		"data over api.MaxTxDataBytes": tx(func(r *api.TransactionRequest) {
			r.Data = s("0x" + strings.Repeat("ab", api.MaxTxDataBytes+1))
		}),
		"access list over api.MaxAccessListItems": tx(func(r *api.TransactionRequest) {
			keys := make([]string, api.MaxAccessListItems)
			for i := range keys {
				keys[i] = "0x" + strings.Repeat("00", 32)
			}
			r.AccessList = []api.AccessTuple{{Address: *r.To, StorageKeys: keys}}
		}),
	}
	ok := tx(func(*api.TransactionRequest) {})
	if _, _, err := client.TxFromRequest(ok); err != nil {
		t.Fatalf("a valid request: %v", err)
	}
	for name, req := range txCases {
		_, _, sdkErr := client.TxFromRequest(req)
		params, _ := json.Marshal([]any{req})
		_, nodeErr := wallet.Prepare(api.MethodSignTransaction, params, nil)
		sameRefusal(t, name, sdkErr, nodeErr)
	}

	// Typed data: the node decodes strictly; so does the SDK now.
	var permit map[string]any
	if err := json.Unmarshal([]byte(permitJSON), &permit); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var o map[string]any
		json.Unmarshal([]byte(permitJSON), &o)
		f(o)
		b, _ := json.Marshal(o)
		return b
	}
	tdCases := map[string][]byte{
		"unknown member":             edit(func(o map[string]any) { o["primary_type"] = "Permit" }),
		"unknown domain member":      edit(func(o map[string]any) { o["domain"].(map[string]any)["chainID"] = "0x5" }),
		"no primaryType":             edit(func(o map[string]any) { delete(o, "primaryType") }),
		"trailing data":              append([]byte(permitJSON), []byte(`{"types":{}}`)...),
		"over api.MaxTypedDataBytes": append([]byte(permitJSON), []byte(strings.Repeat(" ", api.MaxTypedDataBytes))...),
	}
	if _, err := client.TypedDataHash([]byte(permitJSON)); err != nil {
		t.Fatalf("valid typed data: %v", err)
	}
	for name, td := range tdCases {
		_, sdkErr := client.TypedDataHash(td)
		params, _ := json.Marshal([]any{from, json.RawMessage(td)})
		_, nodeErr := wallet.Prepare(api.MethodSignTypedDataV4, params, nil)
		if name == "trailing data" || strings.HasPrefix(name, "over") {
			// Not a single JSON value (or too big to embed whole): the node
			// gets it as MetaMask sends it, a string holding the JSON.
			params, _ = json.Marshal([]any{from, string(td)})
			_, nodeErr = wallet.Prepare(api.MethodSignTypedDataV4, params, nil)
		}
		sameRefusal(t, "typed data: "+name, sdkErr, nodeErr)
	}

	// The CLI's decoder of transaction files (client.DecodeTxRequest) is
	// the node's: an unknown member is refused by both.
	raw := []byte(`{"from":"` + from + `","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","gasLimit":"0x5208"}`)
	_, sdkErr := client.DecodeTxRequest(raw)
	_, nodeErr := wallet.Prepare(api.MethodSignTransaction, json.RawMessage(`[`+string(raw)+`]`), nil)
	sameRefusal(t, "unknown transaction member", sdkErr, nodeErr)
}

// sameRefusal fails unless both sides refused, with one JSON-RPC code.
func sameRefusal(t *testing.T, name string, sdkErr, nodeErr error) {
	t.Helper()
	var sdk, node *api.Error
	switch {
	case nodeErr == nil:
		t.Errorf("%s: the node accepts it (the case is wrong)", name)
	case sdkErr == nil:
		t.Errorf("%s: the SDK accepts what the node refuses (%v)", name, nodeErr)
	case !errors.As(sdkErr, &sdk) || !errors.As(nodeErr, &node):
		t.Errorf("%s: want *api.Error from both, got %v and %v", name, sdkErr, nodeErr)
	case sdk.Code != node.Code:
		t.Errorf("%s: SDK refuses with code %d, the node with %d", name, sdk.Code, node.Code)
	}
}
