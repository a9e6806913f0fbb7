package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
)

// TestSignRateRefusalKeepsApproval: a signature refused for its scope's
// rate (CodeRateLimited) has spent nothing of its approval, so the same
// request sent again after retryAfterMs is signed; and a request whose
// approval does not verify gives its token back, so forged requests
// claiming a scope cannot use up its rate. Before, the gateway took the
// token after recording the approval's nonces: of concurrent requests
// past the quota, each was refused and its resend refused as a replay
// (-32014), which is what `keymesh bench sign` met at ~200 signatures/s.
func TestSignRateRefusalKeepsApproval(t *testing.T) {
	tc := newTestCluster(t)
	waitAllReachable(t, tc)
	cfg := walletScopeConfig
	cfg.Quota = api.ScopeQuota{SignaturesPerSecond: 1}
	_, us := newWalletScopeConfig(t, tc.clients, cfg, "alice")
	u := us[0]
	ctx := context.Background()
	var res api.CreateAccountResult
	if err := tc.clients[0].Call(client.WithProofs(ctx, u.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})), api.MethodCreateAccount, api.CreateAccountParams{Scope: u.scope, Account: u.account}, &res); err != nil {
		t.Fatal(err)
	}
	addr := common.HexToAddress(res.Address)
	once, err := client.New(tc.nodes[0].APIURL(), client.WithRetry(client.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	type request struct {
		params []any
		proofs string
	}
	newRequest := func(signer *walletUser, msg string) request {
		params := []any{hexutil.Encode([]byte(msg)), addr.Hex()}
		return request{params, signer.approveParams(t, api.MethodPersonalSign, params)}
	}
	send := func(r request) error {
		var sig string
		return once.Call(client.WithProofs(ctx, r.proofs), api.MethodPersonalSign, r.params, &sig)
	}

	// Four at once against a bucket of one token a second.
	reqs := make([]request, 4)
	errs := make([]error, len(reqs))
	for i := range reqs {
		reqs[i] = newRequest(u, fmt.Sprint("concurrent ", i))
	}
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { errs[i] = send(reqs[i]) })
	}
	wg.Wait()
	var limited []int
	for i, err := range errs {
		var ae *api.Error
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.Code == api.CodeRateLimited:
			limited = append(limited, i)
		default:
			t.Fatalf("request %d: %v, want a signature or CodeRateLimited", i, err)
		}
	}
	if len(limited) == 0 {
		t.Fatal("4 concurrent signatures under a quota of 1 a second: none refused for the rate")
	}
	// Each refused request, sent again unchanged once the bucket refills,
	// is signed: its approval was not spent.
	for _, i := range limited {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := send(reqs[i])
			if err == nil {
				break
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeRateLimited || time.Now().After(deadline) {
				t.Fatalf("request %d sent again after a rate refusal: %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// A forged approval (another key claiming alice) is refused and gives
	// its token back: alice's own request right after it is signed.
	forgerKey, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	forger := &walletUser{scope: u.scope, account: u.account, signer: client.UserKeySigner(forgerKey, u.scope, u.account)}
	time.Sleep(1100 * time.Millisecond) // the bucket holds its one token again
	var ae *api.Error
	if err := send(newRequest(forger, "forged")); !errors.As(err, &ae) || ae.Code == api.CodeRateLimited {
		t.Fatalf("forged approval: %v, want an authorization error", err)
	}
	if err := send(newRequest(u, "after the forgery")); err != nil {
		t.Fatalf("alice's request after a forged one: %v (the forged request kept the scope's token)", err)
	}
}
