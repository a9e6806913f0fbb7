package api

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestOperationHash(t *testing.T) {
	addr := common.HexToAddress("0x00000000000000000000000000000000deadbeef")
	var digest [32]byte
	digest[31] = 1
	// The layout spelled out by hand: tag ‖ len(method) ‖ method ‖ address ‖ digest.
	var in []byte
	in = append(in, "keymesh/wallet/operation/v1"...)
	in = append(in, 0, 13)
	in = append(in, "personal_sign"...)
	in = append(in, addr[:]...)
	in = append(in, digest[:]...)
	want := sha256.Sum256(in)
	if got := OperationHash("personal_sign", addr, digest); got != want {
		t.Fatalf("OperationHash = %x, want %x", got, want)
	}
	// Every input is bound.
	seen := map[string]string{hex.EncodeToString(want[:]): "base"}
	other := digest
	other[0] = 1
	for name, h := range map[string][32]byte{
		"method":  OperationHash("eth_signTypedData_v4", addr, digest),
		"address": OperationHash("personal_sign", common.Address{1}, digest),
		"digest":  OperationHash("personal_sign", addr, other),
	} {
		if prev, ok := seen[hex.EncodeToString(h[:])]; ok {
			t.Errorf("changing the %s gives the same hash as %s", name, prev)
		}
		seen[hex.EncodeToString(h[:])] = name
	}
}
