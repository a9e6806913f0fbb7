package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
)

// TestCeremonyFloodStaysInItsScope is issue 16's ceremony flood on a real
// node: 101 batched POSTs of 100 keymesh_initiateRegistration each (10,100
// unauthenticated requests) against scope A, from 101 client addresses
// (127.0.5.x, so the per-address limits alone do not stop it). Before,
// they filled the node-wide challenge table and every scope got -32005
// for five minutes. Now the flood empties scope A's ceremony bucket (and
// at worst its part of the challenge table): it is answered with
// api.CodeRateLimited (HTTP 429 once a whole batch is refused), and scope
// B's users, from their own address, still register and log in on the
// same node.
func TestCeremonyFloodStaysInItsScope(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	dev, _ := client.GenerateKey("ed25519")
	cfg := client.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: "user", SessionTTL: time.Hour}
	scopeA, err := tc.clients[0].CreateScope(ctx, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	scopeB, err := tc.clients[0].CreateScope(ctx, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := tc.nodes[0].APIURL() + "/"

	// One batch of 100 registrations, each with its own registration key.
	batch := func() []byte {
		var b bytes.Buffer
		b.WriteByte('[')
		for i := range api.MaxBatch {
			k, _ := client.GenerateKey("p256")
			p, _ := json.Marshal(api.InitiateRegistrationParams{Scope: scopeA.ID, RegistrationKey: k.Public()})
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i, api.MethodInitiateRegistration, p)
		}
		b.WriteByte(']')
		return b.Bytes()
	}
	var (
		mu                       sync.Mutex
		opened, limited, http429 int
		other                    = map[int]int{}
	)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range 101 {
		body := batch()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.5.%d", 1+i))}}
			hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var rs []api.Response
			if err := json.Unmarshal(b, &rs); err != nil {
				t.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == http.StatusTooManyRequests {
				http429++
			}
			for _, r := range rs {
				switch {
				case r.Error == nil:
					opened++
				case r.Error.Code == api.CodeRateLimited:
					limited++
				default:
					other[r.Error.Code]++
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("flood: %d challenges opened, %d rate-limited (%d whole batches: HTTP 429), others %v", opened, limited, http429, other)
	if limited == 0 || http429 == 0 {
		t.Fatalf("the flood was not rate limited: %d opened, %d limited, %d HTTP 429", opened, limited, http429)
	}
	answers := opened + limited
	for _, n := range other {
		answers += n
	}
	if answers != 101*api.MaxBatch {
		t.Fatalf("%d answers", answers)
	}

	// Scope B's users, right after, on the same node: their ceremonies
	// succeed (passkeyLogin fails the test otherwise).
	for range 3 {
		if s := passkeyLogin(t, tc.clients[0], scopeB.ID, ""); s == nil || s.Scope != scopeB.ID {
			t.Fatal("no session in scope B")
		}
	}
	// Scope A itself, for a new address, is refused with the clear code
	// and a retry hint (not the challenge table's -32005), or served.
	k, _ := client.GenerateKey("p256")
	_, err = tc.clients[0].InitiateKeyedRegistration(ctx, scopeA.ID, client.DerivedAccountID(k), k)
	if err != nil && (apiCode(err) != api.CodeRateLimited || !strings.Contains(err.Error(), "retry after")) {
		t.Fatalf("scope A after the flood: %v", err)
	}
}
