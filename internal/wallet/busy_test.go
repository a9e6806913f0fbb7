package wallet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/transport"
)

// onceAuth is fakeAuth with auth's nonce rule (auth.Authorize, "a nonce
// seen before is a replay, unless with the same operation hash and
// request"), cluster-wide: an approval (its proofs) is accepted for the
// first request id it is presented with, and any node asked again with the
// same request id accepts it again (a gateway's retry, a co-signer), but
// another request id is a replay. It counts the request ids it refused.
type onceAuth struct {
	fakeAuth
	mu       sync.Mutex
	requests map[string][requestLen]byte
	replays  int
}

func (o *onceAuth) Authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	pr, err := o.fakeAuth.Authorize(ctx, op, proofs)
	if err != nil {
		return pr, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.requests == nil {
		o.requests = map[string][requestLen]byte{}
	}
	if r, ok := o.requests[proofs]; ok && r != op.Request {
		o.replays++
		return auth.Principal{}, api.Errorf(api.CodeAuthReplay, "approval nonce already used by another request")
	}
	o.requests[proofs] = op.Request
	return pr, nil
}

// holdSlots takes every slot of kind w that scope may hold on node i, as a
// noisy neighbour in the same scope would; release gives them back.
func holdSlots(t *testing.T, c *cluster, i int, scope string, w work, scopeMax int) (release func()) {
	t.Helper()
	// A session that just ended (a co-signer's handler returns after the
	// gateway has its signature) may still hold its slot for a moment:
	// start from an idle node, or the hold would be partial.
	for deadline := time.Now().Add(5 * time.Second); c.nodes[i].svc.sched.inUse(w) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %d %s slots still in use", i+1, c.nodes[i].svc.sched.inUse(w), w)
		}
	}
	var held []*slot
	for {
		sl, err := c.nodes[i].svc.sched.acquire(scope, w, scopeMax)
		if err != nil {
			break
		}
		held = append(held, sl)
	}
	if len(held) == 0 {
		t.Fatalf("node %d: no %s slot to hold", i+1, w)
	}
	return func() {
		for _, sl := range held {
			sl.release()
		}
	}
}

// TestBusyCosignerRetried plays a flood that keeps the co-signers' signing
// slots full for the scope: the gateway's invitation is refused as busy
// (before the co-signer authorises anything), the gateway waits and tries
// again with the same request id, and the signature is made once the slots
// free up, with the approval presented under one request id only; the
// client replaying that approval afterwards is refused as a replay. When
// the slots never free up within the gateway's wait, the client gets
// CodeBusy with a retry-after hint, not an authorisation error.
func TestBusyCosignerRetried(t *testing.T) {
	oa := &onceAuth{}
	c := newCluster(t, oa, func(o *Options) {
		o.Limits = Limits{Signs: 2, Keygens: 2}
		o.BusyWaitSign, o.BusyWaitKeygen = 3*time.Second, 10*time.Second
	})
	u := oa.newUser("s", "alice")
	addr := createAccount(t, c, 0, u)

	// Both co-signers are full for the scope; they free up after 300 ms.
	rel2 := holdSlots(t, c, 1, "s", workSign, 0)
	rel3 := holdSlots(t, c, 2, "s", workSign, 0)
	time.AfterFunc(300*time.Millisecond, func() { rel2(); rel3() })
	msg := []byte("signed after a busy co-signer")
	params := []any{hexutil.Encode(msg), addr.Hex()}
	proofs := approveParams(t, u, api.MethodPersonalSign, params)
	var sigHex string
	if err := c.call(0, proofs, api.MethodPersonalSign, params, &sigHex); err != nil {
		t.Fatalf("signing with busy co-signers: %v", err)
	}
	if recoverAddr(t, mustPrepare(t, api.MethodPersonalSign, params).Digest[:], hexutil.MustDecode(sigHex)) != addr {
		t.Fatal("wrong signer")
	}
	refused := c.nodes[1].svc.stats.BusyRefused.Load() + c.nodes[2].svc.stats.BusyRefused.Load()
	if refused == 0 || c.nodes[0].svc.stats.BusyRetries.Load() == 0 {
		t.Fatalf("the co-signers were never busy (refused %d, retries %d): the test did not test", refused, c.nodes[0].svc.stats.BusyRetries.Load())
	}
	if oa.replays != 0 {
		t.Fatalf("the gateway's retries presented the approval under %d other request ids", oa.replays)
	}
	// The approval was spent on that one request.
	err := c.call(1, proofs, api.MethodPersonalSign, params, &sigHex)
	if apiCode(err) != api.CodeAuthReplay {
		t.Fatalf("the approval replayed after a retried signature: %v", err)
	}

	// Full for good: CodeBusy with a hint, after the gateway's wait.
	rel2 = holdSlots(t, c, 1, "s", workSign, 0)
	rel3 = holdSlots(t, c, 2, "s", workSign, 0)
	params = []any{hexutil.Encode([]byte("signed on the second call")), addr.Hex()}
	proofs = approveParams(t, u, api.MethodPersonalSign, params)
	err = c.call(0, proofs, api.MethodPersonalSign, params, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeBusy {
		t.Fatalf("co-signers full: want CodeBusy, got %v", err)
	}
	if d, ok := api.BusyRetryAfter(ae); !ok || d <= 0 {
		t.Fatalf("CodeBusy without a retry-after hint: %s", ae.Data)
	}
	// Another scope is not affected by this one's full share.
	v := oa.newUser("other", "bob")
	addrV := createAccount(t, c, 0, v)
	if _, err := personalSign(c, 0, v, t, []byte("quiet scope"), addrV); err != nil {
		t.Fatalf("another scope while this one is busy: %v", err)
	}
	// No co-signer got past its busy check: the gateway gave the approval
	// back, and the same call sent again (as the SDK does) is signed.
	if c.nodes[0].svc.stats.Released.Load() != 1 {
		t.Fatalf("released %d approvals, want 1", c.nodes[0].svc.stats.Released.Load())
	}
	rel2()
	rel3()
	if err := c.call(0, proofs, api.MethodPersonalSign, params, &sigHex); err != nil {
		t.Fatalf("the same call after a busy refusal: %v", err)
	}
	if err := c.call(0, proofs, api.MethodPersonalSign, params, &sigHex); apiCode(err) != api.CodeAuthReplay {
		t.Fatalf("the call a third time, after it was signed: %v, want a replay refusal", err)
	}
}

// ReleaseNonces is auth.Service.ReleaseNonces for onceAuth.
func (o *onceAuth) ReleaseNonces(_ context.Context, op auth.Operation, proofs string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r, ok := o.requests[proofs]; ok && r == op.Request {
		delete(o.requests, proofs)
	}
	return nil
}

// TestBusyKeygenRetried: a key generation whose peer is full for the scope
// is tried again with the same request id once it frees up, and the peer
// that was admitted on the first try is told to stop (kindAbort) instead
// of holding its slot until its session times out.
func TestBusyKeygenRetried(t *testing.T) {
	oa := &onceAuth{}
	c := newCluster(t, oa, func(o *Options) {
		o.Limits = Limits{Signs: 4, Keygens: 2}
		o.BusyWaitKeygen = 10 * time.Second
		o.KeygenTimeout = 30 * time.Second
		if o.Config.ID == 3 {
			// Node 3 answers invitations late, so that node 2 has
			// surely started the first try's session when node 3
			// refuses it.
			o.Transport = slowKeygen{o.Transport}
		}
	})
	u := oa.newUser("k", "carol")
	rel3 := holdSlots(t, c, 2, "k", workKeygen, 0)
	time.AfterFunc(700*time.Millisecond, rel3)
	t0 := time.Now()
	addr := createAccount(t, c, 0, u)
	tCreated := time.Now()
	if addr == (common.Address{}) || oa.replays != 0 {
		t.Fatalf("address %s, %d replays", addr.Hex(), oa.replays)
	}
	if c.nodes[2].svc.stats.BusyRefused.Load() == 0 || c.nodes[1].svc.stats.Aborted.Load() == 0 {
		t.Fatalf("node 3 refused %d, node 2 aborted %d sessions: the test did not test",
			c.nodes[2].svc.stats.BusyRefused.Load(), c.nodes[1].svc.stats.Aborted.Load())
	}
	// Node 2 ran the first try's session until the gateway aborted it: its
	// slot is free again long before a 30 s session timeout.
	for c.nodes[1].svc.sched.inUse(workKeygen) != 0 {
		if time.Since(t0) > 15*time.Second {
			t.Fatal("node 2 still holds a key generation slot of an abandoned try")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("key generation retried after a busy peer in %v; node 2's slots free after %v", tCreated.Sub(t0), time.Since(t0))
}

// slowKeygen delays a node's key generation handler by 300 ms.
type slowKeygen struct{ Transport }

func (s slowKeygen) Handle(kind string, h transport.Handler) {
	if kind == kindKeygen {
		inner := h
		h = func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
			time.Sleep(300 * time.Millisecond)
			return inner(ctx, from, body)
		}
	}
	s.Transport.Handle(kind, h)
}
