package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
)

// TestServicesChainIDs: the config's services section is read when a node
// starts: nodes whose chain_ids is [5] refuse to sign a transaction for
// chain 1 (a user's approval for it notwithstanding), and sign for chain 5.
func TestServicesChainIDs(t *testing.T) {
	tc := newTestCluster(t)
	for i := range tc.nodes {
		tc.cfgs[i].Services = &config.Services{ChainIDs: []uint64{5}}
		tc.restart(i)
	}
	waitAllReachable(t, tc) // key generation needs all three, redialled after the restarts
	ctx := context.Background()
	_, users := newWalletScope(t, tc.clients, "alice")
	alice := users[0]
	var created api.CreateAccountResult
	if err := tc.clients[0].Call(client.WithProofs(ctx, alice.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})), api.MethodCreateAccount,
		api.CreateAccountParams{Scope: alice.scope, Account: alice.account}, &created); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	tx := func(chain string) []any {
		return []any{map[string]any{"from": created.Address, "to": "0x000000000000000000000000000000000000bEEF", "chainId": chain,
			"nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1"}}
	}
	var raw string
	err := tc.clients[0].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodSignTransaction, tx("0x1"))), api.MethodSignTransaction, tx("0x1"), &raw)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalidInput || !strings.Contains(ae.Message, "chains this node signs for") {
		t.Fatalf("chain 1 on nodes configured for chain 5: %v", err)
	}
	if err := tc.clients[1].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodSignTransaction, tx("0x5"))), api.MethodSignTransaction, tx("0x5"), &raw); err != nil {
		t.Fatalf("chain 5: %v", err)
	}
}
