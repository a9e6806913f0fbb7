package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
)

// refusingNode answers each POST with answer(attempt) (1-based): an
// *api.Error, or nil for the result "ok"; status is the HTTP status of
// refusals (200 unless set). It records every attempt's approval header.
type refusingNode struct {
	srv     *httptest.Server
	status  int
	answer  func(attempt int) *api.Error
	mu      sync.Mutex
	proofs  []string
	attempt atomic.Int32
}

func newRefusingNode(t *testing.T, answer func(int) *api.Error) *refusingNode {
	t.Helper()
	n := &refusingNode{answer: answer, status: http.StatusOK}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		k := int(n.attempt.Add(1))
		n.mu.Lock()
		n.proofs = append(n.proofs, r.Header.Get(api.ProofsHeader))
		n.mu.Unlock()
		resp := api.Response{JSONRPC: api.Version, ID: req.ID}
		status := http.StatusOK
		if e := n.answer(k); e != nil {
			resp.Error, status = e, n.status
		} else {
			resp.Result = json.RawMessage(`"ok"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *refusingNode) client(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(n.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errCode(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// TestRetryBusyAndRateLimited: the SDK sends a call refused as busy or
// rate-limited again, with the same approval, after the node's hint, and
// stops after MaxAttempts; HTTP 429 answers (a whole refused body) too.
func TestRetryBusyAndRateLimited(t *testing.T) {
	ctx := client.WithProofs(context.Background(), "approval-1")
	for name, refuse := range map[string]*api.Error{
		"busy":         api.Busy("sign", 5*time.Millisecond, "busy"),
		"rate-limited": api.RateLimited("client", 5*time.Millisecond),
	} {
		t.Run(name, func(t *testing.T) {
			n := newRefusingNode(t, func(k int) *api.Error {
				if k <= 2 {
					return refuse
				}
				return nil
			})
			n.status = http.StatusTooManyRequests
			var out string
			if err := n.client(t).Call(ctx, api.MethodPersonalSign, []string{"0x01"}, &out); err != nil || out != "ok" {
				t.Fatalf("Call: %q %v", out, err)
			}
			if got := n.attempt.Load(); got != 3 {
				t.Fatalf("%d attempts, want 3", got)
			}
			for i, p := range n.proofs {
				if p != "approval-1" {
					t.Fatalf("attempt %d carried approval %q", i+1, p)
				}
			}

			// Always refused: MaxAttempts, each wait capped (the hint is
			// an hour; the test would time out without the cap).
			n = newRefusingNode(t, func(int) *api.Error {
				e := *refuse
				if refuse.Code == api.CodeBusy {
					e = *api.Busy("sign", time.Hour, "busy")
				} else {
					e = *api.RateLimited("client", time.Hour)
				}
				return &e
			})
			err := n.client(t, client.WithRetry(client.RetryPolicy{MaxAttempts: 4, MaxWait: 5 * time.Millisecond})).Call(ctx, api.MethodPersonalSign, nil, nil)
			if errCode(err) != refuse.Code || n.attempt.Load() != 4 {
				t.Fatalf("always refused: %d attempts, %v", n.attempt.Load(), err)
			}
		})
	}
}

// TestRetryNeverForOtherCodes: a refusal that is not busy or rate-limited
// (the call may be refused for good, or may have run) is sent once.
func TestRetryNeverForOtherCodes(t *testing.T) {
	for _, code := range []int{api.CodeRejected, api.CodeLimitExceeded, api.CodeUnavailable, api.CodeInternalError,
		api.CodeAuthReplay, api.CodeAuthExpired, api.CodeSealedReplay, api.CodeInvalidParams} {
		n := newRefusingNode(t, func(int) *api.Error { return api.Errorf(code, "no") })
		err := n.client(t).Call(context.Background(), api.MethodPersonalSign, nil, nil)
		if errCode(err) != code || n.attempt.Load() != 1 {
			t.Fatalf("code %d: %d attempts, %v", code, n.attempt.Load(), err)
		}
	}
	// Retries off.
	n := newRefusingNode(t, func(int) *api.Error { return api.Busy("sign", time.Millisecond, "busy") })
	err := n.client(t, client.WithRetry(client.RetryPolicy{MaxAttempts: 1})).Call(context.Background(), api.MethodPersonalSign, nil, nil)
	if errCode(err) != api.CodeBusy || n.attempt.Load() != 1 {
		t.Fatalf("retries off: %d attempts, %v", n.attempt.Load(), err)
	}
}

// TestRetryInsideDeadline: a wait that would end after the context's
// deadline is not started: the refusal comes back at once.
func TestRetryInsideDeadline(t *testing.T) {
	n := newRefusingNode(t, func(int) *api.Error { return api.Busy("keygen", 10*time.Second, "busy") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := n.client(t, client.WithRetry(client.RetryPolicy{MaxAttempts: 5, MaxWait: time.Minute})).Call(ctx, api.MethodCreateAccount, nil, nil)
	if errCode(err) != api.CodeBusy || n.attempt.Load() != 1 || ctx.Err() != nil {
		t.Fatalf("%d attempts, %v (ctx %v)", n.attempt.Load(), err, ctx.Err())
	}
}

// TestRetryAfterSpentApproval: a gateway that authorised the call, then
// gave up on busy co-signers, recorded the approval; the retry is refused
// as a replay (nothing signs twice) and the SDK says the approval must be
// given again.
func TestRetryAfterSpentApproval(t *testing.T) {
	n := newRefusingNode(t, func(k int) *api.Error {
		if k == 1 {
			return api.Busy("sign", time.Millisecond, "busy: gave up after 4 tries")
		}
		return api.Errorf(api.CodeAuthReplay, "approval nonce already used by another request")
	})
	err := n.client(t).Call(client.WithProofs(context.Background(), "a"), api.MethodPersonalSign, nil, nil)
	if errCode(err) != api.CodeAuthReplay || !strings.Contains(err.Error(), "approve the call again") || n.attempt.Load() != 2 {
		t.Fatalf("%d attempts, %v", n.attempt.Load(), err)
	}
}

// countingTransport counts the POSTs a client sends.
type countingTransport struct{ posts atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		c.posts.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestRetryRateLimitedRealNode: against a real production node (sealed
// requests only) whose ceremony bucket admits one request a second, a
// second registration ceremony is refused with -32060 and the node's
// hint, sealed; the SDK waits it out and the call succeeds on its second
// attempt. With retries off the refusal reaches the caller.
func TestRetryRateLimitedRealNode(t *testing.T) {
	nodes := startCluster(t, func(c *config.Node) {
		c.APILimits = &config.APILimits{CeremonyClientPerSecond: 1, CeremonyClientBurst: 1}
	}, 1)
	rn := nodes[1]
	a := client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{rn.root}, Warn: func(string) {}}
	ct := &countingTransport{}
	c, err := client.New(rn.url, client.WithAttestation(a), client.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "app.example", Origins: []string{"https://app.example"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	register := func(c *client.Client) error {
		k, err := client.GenerateKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.InitiateKeyedRegistration(ctx, sc.ID, client.DerivedAccountID(k), k)
		return err
	}
	if err := register(c); err != nil {
		t.Fatal(err)
	}
	before := ct.posts.Load()
	if err := register(c); err != nil {
		t.Fatalf("the rate-limited ceremony was not retried to success: %v", err)
	}
	if got := ct.posts.Load() - before; got != 2 {
		t.Fatalf("%d POSTs for one retried call, want 2", got)
	}

	once, err := client.New(rn.url, client.WithAttestation(a), client.WithRetry(client.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if err := register(once); errCode(err) != api.CodeRateLimited {
		t.Fatalf("without retries: %v, want %d", err, api.CodeRateLimited)
	}
}

// TestRetryNotOnForgedRefusal plays an attacker on the path of a sealed
// client who answers its call with a plaintext "busy" or "rate limited"
// refusal (hint 1 ms) after the node ran it: the refusal is not the
// node's (unauthenticated), so the SDK does not send the call again, and
// it runs once at the node.
func TestRetryNotOnForgedRefusal(t *testing.T) {
	nodes := startCluster(t, nil, 1)
	rn := nodes[1]
	p := newProxy(t, rn.url)
	c := sealedTo(t, p.srv.URL, client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{rn.root}})
	ctx := context.Background()
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.ScopeConfig{RPID: "app.example", Origins: []string{"https://app.example"}, Mode: "developer", SessionTTL: time.Hour}
	for _, forged := range []*api.Error{api.Busy("sign", time.Millisecond, "busy"), api.RateLimited("client", time.Millisecond)} {
		body, _ := json.Marshal(api.Response{JSONRPC: api.Version, ID: json.RawMessage("null"), Error: forged})
		rw := func(resp *http.Response) error {
			replaceBody(resp, http.StatusTooManyRequests, "application/json", body)
			return nil
		}
		p.rewrite.Store(&rw)
		before := executions(t, rn.metrics, "keymesh_createScope")
		_, err := c.CreateScope(ctx, dev, cfg)
		p.rewrite.Store(nil)
		if !errors.Is(err, client.ErrUnauthenticated) || errCode(err) != 0 {
			t.Fatalf("forged %d: %v", forged.Code, err)
		}
		if got := executions(t, rn.metrics, "keymesh_createScope") - before; got != 1 {
			t.Fatalf("forged %d: the call ran %d times at the node", forged.Code, got)
		}
	}
}
