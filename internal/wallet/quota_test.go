package wallet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/record"
)

// racingAuth is onceAuth that, while it authorises a signing request,
// lets a competing request of the same scope take the gateway's last
// rate token (drain), as concurrent requests do under load.
type racingAuth struct {
	onceAuth
	drain func()
}

func (r *racingAuth) Authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	if op.Method == api.MethodPersonalSign && r.drain != nil {
		r.drain()
	}
	return r.onceAuth.Authorize(ctx, op, proofs)
}

// TestRateRefusalSpendsNoApproval: when a competing request takes the
// scope's last token while a request is being authorised, that request
// is still signed, or refused before its approval is recorded, so that
// sending it again works. Before, the gateway took its token after
// authorising: the request was refused with CodeRateLimited, and the same
// request sent again was refused as a replay (CodeAuthReplay).
func TestRateRefusalSpendsNoApproval(t *testing.T) {
	ra := &racingAuth{}
	q := auth.ResolveQuota(record.ScopeQuota{})
	q.SignsPerSecond, q.SignBurst = 0.001, 1 // one token, no refill during the test
	c := newCluster(t, ra, func(o *Options) {
		o.Quota = func(context.Context, string) (auth.Quota, bool) { return q, true }
	})
	u := ra.newUser("s", "alice")
	addr := createAccount(t, c, 0, u)
	gw := c.nodes[0].svc
	gw.claimedScope = fakeScope
	ra.drain = func() {
		for {
			if _, ok := gw.rates.take("s", q.SignsPerSecond, q.SignBurst); !ok {
				return
			}
		}
	}
	params := []any{hexutil.Encode([]byte("raced")), addr.Hex()}
	proofs := approveParams(t, u, api.MethodPersonalSign, params)
	err := c.call(0, proofs, api.MethodPersonalSign, params, nil)
	if apiCode(err) == api.CodeRateLimited {
		gw.rates.refund("s", q.SignBurst)
		ra.drain = nil
		err = c.call(0, proofs, api.MethodPersonalSign, params, nil)
	}
	if err != nil {
		t.Fatalf("a request whose token a competitor took during its authorization: %v", err)
	}
	if ra.replays != 0 {
		t.Fatalf("the approval was presented under %d other request ids", ra.replays)
	}

	// With the bucket empty, a request is refused before its approval is
	// looked at: the authorizer never sees it.
	ra.drain = nil
	before := len(ra.requests)
	params = []any{hexutil.Encode([]byte("over the rate")), addr.Hex()}
	if err := c.call(0, approveParams(t, u, api.MethodPersonalSign, params), api.MethodPersonalSign, params, nil); apiCode(err) != api.CodeRateLimited {
		t.Fatalf("an empty bucket: %v, want CodeRateLimited", err)
	}
	if len(ra.requests) != before {
		t.Fatal("a request refused for its rate had its approval recorded")
	}
}

// fakeScope is proofsScope for fakeAuth's approvals.
func fakeScope(proofs, method string, hash [32]byte) string {
	var a fakeApproval
	raw, err := base64.RawURLEncoding.DecodeString(proofs)
	if err != nil || json.Unmarshal(raw, &a) != nil || a.Method != method || a.Hash != hash {
		return ""
	}
	return a.Scope
}

// TestCosignerRateBoundsMaliciousGateway: a gateway that ignores its
// scope's signature rate (here node 1, whose quota says 1000 a second)
// gets no more than n times the rate from each co-signer, which applies
// the quota itself; another scope is not affected.
func TestCosignerRateBoundsMaliciousGateway(t *testing.T) {
	oa := &onceAuth{}
	slow := auth.ResolveQuota(record.ScopeQuota{})
	slow.SignsPerSecond, slow.SignBurst = 0.001, 1 // one token per co-signer and holder, no refill in the test
	c := newCluster(t, oa, func(o *Options) {
		q := slow
		if o.Config.ID == 1 {
			q.SignsPerSecond, q.SignBurst = 1000, 1000 // the gateway that ignores the quota
		}
		o.Quota = func(_ context.Context, scope string) (auth.Quota, bool) {
			if scope == "s" {
				return q, true
			}
			return auth.ResolveQuota(record.ScopeQuota{}), true
		}
	})
	u := oa.newUser("s", "alice")
	addr := createAccount(t, c, 0, u)
	// Each co-signer's bucket holds n × 1 = 3 tokens: at most 6
	// signatures through nodes 2 and 3 together.
	signed, limited := 0, 0
	for i := range 10 {
		_, err := personalSign(c, 0, u, t, []byte{byte(i)}, addr)
		switch {
		case err == nil:
			signed++
		case apiCode(err) == api.CodeRateLimited:
			limited++
		default:
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	if signed > 6 || limited == 0 {
		t.Fatalf("%d signed, %d refused for the rate: the co-signers did not apply the scope's quota", signed, limited)
	}
	if got := c.nodes[1].svc.stats.RateLimited.Load() + c.nodes[2].svc.stats.RateLimited.Load(); got == 0 {
		t.Fatal("no co-signer counted a rate refusal")
	}
	v := oa.newUser("other", "bob")
	addrV := createAccount(t, c, 0, v)
	if _, err := personalSign(c, 0, v, t, []byte("another scope"), addrV); err != nil {
		t.Fatalf("another scope after this one's co-signers refused: %v", err)
	}
}
