package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// FuzzSignInvite: the decoder of a peer's signing invitation accepts only
// canonical encodings (decode → encode gives the input back) and never
// panics.
func FuzzSignInvite(f *testing.F) {
	inv := signInvite{Method: api.MethodPersonalSign, Params: []byte(`["0x00","0x0000000000000000000000000000000000000001"]`), Proofs: "abc", Signers: []round.PartyID{1, 3}}
	inv.Nonce[0], inv.Request[5] = 7, 9
	f.Add(inv.marshal())
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m signInvite
		if err := m.unmarshal(b); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if !bytes.Equal(m.marshal(), b) {
			t.Fatalf("not canonical: %x", b)
		}
	})
}

// FuzzKeygenInvite is FuzzSignInvite for key generation invitations.
func FuzzKeygenInvite(f *testing.F) {
	inv := keygenInvite{Scope: "app", Account: "alice", Proofs: "p"}
	inv.Nonce[1] = 1
	f.Add(inv.marshal())
	f.Add([]byte{1, 0, 0, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m keygenInvite
		if err := m.unmarshal(b); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if !bytes.Equal(m.marshal(), b) {
			t.Fatalf("not canonical: %x", b)
		}
	})
}

// FuzzPrepare: client params (forwarded to every signer as they are)
// either prepare, deterministically, or give an *api.Error; never a panic.
func FuzzPrepare(f *testing.F) {
	addr := `"0x00000000000000000000000000000000deadbeef"`
	for _, s := range []struct{ m, p string }{
		{api.MethodPersonalSign, `["0x68656c6c6f",` + addr + `]`},
		{api.MethodPersonalSign, `["hello",` + addr + `]`},
		{api.MethodSignTypedDataV4, `[` + addr + `,{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"a","type":"uint256"},{"name":"b","type":"bytes"}]},"primaryType":"M","domain":{"name":"x"},"message":{"a":"1","b":"0x01"}}]`},
		{api.MethodSignTransaction, `[{"from":` + addr + `,"to":` + addr + `,"chainId":"0x1","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x10","maxPriorityFeePerGas":"0x1","value":"0x1","accessList":[{"address":` + addr + `,"storageKeys":[]}]}]`},
		{api.MethodSignTransaction, `[{"type":"0x0","from":` + addr + `,"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x10","data":"0x6001"}]`},
		{api.MethodSignDigest, `{"address":` + addr + `,"digest":"0x0000000000000000000000000000000000000000000000000000000000000001"}`},
	} {
		f.Add(s.m, []byte(s.p))
	}
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		p, err := Prepare(method, json.RawMessage(params), nil)
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *api.Error", err)
			}
			return
		}
		q, err := Prepare(method, json.RawMessage(params), nil)
		if err != nil || q.Digest != p.Digest || q.Address != p.Address {
			t.Fatal("Prepare is not deterministic")
		}
	})
}
