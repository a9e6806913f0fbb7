package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
)

// fakeClock is a clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// limitedServer is a real HTTP server with rate limits on a fake clock and
// two methods that count their calls: test_scoped (params {"scope"}) and
// keymesh_initiateRegistration (a ceremony method).
type limitedServer struct {
	url   string
	clock *fakeClock
	calls atomic.Int32
}

func newLimitedServer(t *testing.T, l RateLimits, trusted ...netip.Prefix) *limitedServer {
	t.Helper()
	ls := &limitedServer{clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}}
	reg := NewRegistry()
	count := func(context.Context, json.RawMessage) (any, error) {
		ls.calls.Add(1)
		return "ok", nil
	}
	reg.Register("test_scoped", count)
	reg.Register(api.MethodInitiateRegistration, count)
	h := NewHandler(Options{Registry: reg, RateLimits: &l, TrustedProxies: trusted}).(*handler)
	h.limiter.now = ls.clock.now
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ls.url = srv.URL
	return ls
}

// clientFrom returns an HTTP client whose connections come from ip (any
// address of 127.0.0.0/8 is a local address on Linux), so that one test
// plays several client addresses on real sockets.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type rpcResult struct {
	status     int
	retryAfter string
	body       []byte
}

func (ls *limitedServer) post(t *testing.T, c *http.Client, body string, header ...string) rpcResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ls.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rpcResult{resp.StatusCode, resp.Header.Get("Retry-After"), b}
}

func call(method, scope string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"scope":%q}}`, method, scope)
}

// rateLimited reports whether r is a single CodeRateLimited refusal, as a
// client sees it: HTTP 429, a Retry-After header in whole seconds, and the
// hint in the error's data; it returns the bucket named.
func rateLimited(t *testing.T, r rpcResult) (string, bool) {
	t.Helper()
	var resp api.Response
	if json.Unmarshal(r.body, &resp) != nil {
		t.Fatalf("HTTP %d: %s", r.status, r.body)
	}
	if resp.Error == nil || resp.Error.Code != api.CodeRateLimited {
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d without a rate-limit error: %s", r.status, r.body)
		}
		return "", false
	}
	var d api.RateLimitData
	if r.status != http.StatusTooManyRequests || r.retryAfter == "" || r.retryAfter == "0" ||
		json.Unmarshal(resp.Error.Data, &d) != nil || d.RetryAfterMs <= 0 {
		t.Fatalf("rate-limit refusal without its hints: HTTP %d Retry-After %q %s", r.status, r.retryAfter, r.body)
	}
	return d.Limit, true
}

// TestRateLimitPerClient (issue 16): one address that sends faster than
// its bucket is refused with CodeRateLimited, HTTP 429 and a retry-after
// hint, and its refused requests do not run; another address is not
// affected; after the hinted wait the first is admitted again. Without
// the limiter every request runs.
func TestRateLimitPerClient(t *testing.T) {
	ls := newLimitedServer(t, RateLimits{Client: Rate{PerSecond: 1, Burst: 5}})
	attacker, honest := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	refused := 0
	for i := range 50 {
		r := ls.post(t, attacker, call("test_scoped", fmt.Sprintf("s%d", i)))
		if limit, ok := rateLimited(t, r); ok {
			refused++
			if limit != "client" {
				t.Fatalf("refused by %q, want client", limit)
			}
		}
	}
	if refused != 45 || ls.calls.Load() != 5 {
		t.Fatalf("%d refused, %d ran; want 45 and 5", refused, ls.calls.Load())
	}
	if _, ok := rateLimited(t, ls.post(t, honest, call("test_scoped", "s0"))); ok {
		t.Fatal("another address was refused")
	}
	ls.clock.add(time.Second)
	if _, ok := rateLimited(t, ls.post(t, attacker, call("test_scoped", "s0"))); ok {
		t.Fatal("refused after the hinted wait")
	}
	// A notification is charged too (it runs), and so is an unknown
	// method: probing costs the same tokens.
	for range 3 {
		ls.post(t, attacker, `{"jsonrpc":"2.0","id":1,"method":"nope"}`)
	}
	if _, ok := rateLimited(t, ls.post(t, attacker, call("test_scoped", "s0"))); !ok {
		t.Fatal("unknown methods were not charged")
	}
}

// TestRateLimitPerScope: many addresses flooding one scope empty that
// scope's bucket only; requests for another scope from the same addresses
// still run.
func TestRateLimitPerScope(t *testing.T) {
	ls := newLimitedServer(t, RateLimits{Scope: Rate{PerSecond: 1, Burst: 10}})
	refused := 0
	for i := range 40 {
		c := clientFrom(t, fmt.Sprintf("127.0.1.%d", 1+i))
		if limit, ok := rateLimited(t, ls.post(t, c, call("test_scoped", "flooded"))); ok {
			refused++
			if limit != "scope" {
				t.Fatalf("refused by %q, want scope", limit)
			}
		}
		if i%4 != 0 {
			continue // the quiet scope asks at a quarter of the rate, within its burst
		}
		if _, ok := rateLimited(t, ls.post(t, c, call("test_scoped", "quiet"))); ok {
			t.Fatalf("scope quiet refused from %d", i)
		}
	}
	if refused != 30 {
		t.Fatalf("%d refused, want 30", refused)
	}
	// A sealed request's scope is the one it is bound to.
	rl := newRateLimiter(RateLimits{Scope: Rate{PerSecond: 1, Burst: 1}}, nil)
	if rl.admit("", "a", "m") != nil || rl.admit("", "a", "m") == nil || rl.admit("", "b", "m") != nil {
		t.Fatal("scope buckets not separate")
	}
	if got := paramsScope(json.RawMessage(`{"scope":"x","s":{"scope":"y"}}`)); got != "x" {
		t.Fatalf("paramsScope %q", got)
	}
	for _, p := range []string{`[1]`, `{"scope":1}`, `{}`, ``, `{"scope":`} {
		if got := paramsScope(json.RawMessage(p)); got != "" {
			t.Fatalf("paramsScope(%s) = %q", p, got)
		}
	}
}

// TestRateLimitCeremonyStricter: the unauthenticated ceremony methods have
// their own, stricter buckets; running out of them leaves the address's
// other methods alone. A batch of ceremonies is charged element by
// element: its refused elements are answered in the batch (HTTP 200 while
// some ran, 429 once none did).
func TestRateLimitCeremonyStricter(t *testing.T) {
	ls := newLimitedServer(t, RateLimits{
		Client:         Rate{PerSecond: 100, Burst: 1000},
		CeremonyClient: Rate{PerSecond: 1, Burst: 3},
	})
	c := clientFrom(t, "127.0.0.4")
	batch := "[" + strings.TrimSuffix(strings.Repeat(call(api.MethodInitiateRegistration, "a")+",", 10), ",") + "]"
	r := ls.post(t, c, batch)
	var rs []api.Response
	if r.status != http.StatusOK || json.Unmarshal(r.body, &rs) != nil || len(rs) != 10 {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	ran := 0
	for _, x := range rs {
		if x.Error == nil {
			ran++
		} else if x.Error.Code != api.CodeRateLimited || !strings.Contains(string(x.Error.Data), `"ceremony-client"`) {
			t.Fatalf("element refused with %+v", x.Error)
		}
	}
	if ran != 3 || ls.calls.Load() != 3 {
		t.Fatalf("%d ran (%d calls), want 3", ran, ls.calls.Load())
	}
	r = ls.post(t, c, batch)
	if r.status != http.StatusTooManyRequests || r.retryAfter != "1" {
		t.Fatalf("all refused: HTTP %d Retry-After %q", r.status, r.retryAfter)
	}
	// Passport's alias is the same ceremony.
	if !newRateLimiter(RateLimits{}, nil).ceremony[api.AliasInitiateRegistration] {
		t.Fatal("alias not a ceremony method")
	}
	if _, ok := rateLimited(t, ls.post(t, c, call("test_scoped", "a"))); ok {
		t.Fatal("a non-ceremony method was refused by the ceremony bucket")
	}
}

// TestRateLimitTrustedProxy: X-Forwarded-For is believed only from a
// trusted proxy, and only its rightmost untrusted entry: a client cannot
// pick its bucket by writing the header itself.
func TestRateLimitTrustedProxy(t *testing.T) {
	l := RateLimits{Client: Rate{PerSecond: 1, Burst: 1}}
	// Not trusted: the header is ignored, both requests are 127.0.0.5's.
	ls := newLimitedServer(t, l)
	c := clientFrom(t, "127.0.0.5")
	ls.post(t, c, call("test_scoped", "a"), "X-Forwarded-For", "192.0.2.1")
	if _, ok := rateLimited(t, ls.post(t, c, call("test_scoped", "a"), "X-Forwarded-For", "192.0.2.2")); !ok {
		t.Fatal("an untrusted peer chose its bucket with X-Forwarded-For")
	}
	// Trusted proxy 127.0.0.6: clients behind it are told apart, and a
	// client's own leftmost entries are not believed.
	ls = newLimitedServer(t, l, netip.MustParsePrefix("127.0.0.6/32"))
	proxy := clientFrom(t, "127.0.0.6")
	ls.post(t, proxy, call("test_scoped", "a"), "X-Forwarded-For", "192.0.2.1")
	if _, ok := rateLimited(t, ls.post(t, proxy, call("test_scoped", "a"), "X-Forwarded-For", "192.0.2.2")); ok {
		t.Fatal("two clients behind the proxy share a bucket")
	}
	if _, ok := rateLimited(t, ls.post(t, proxy, call("test_scoped", "a"), "X-Forwarded-For", "198.51.100.9, 192.0.2.1")); !ok {
		t.Fatal("a spoofed leftmost X-Forwarded-For entry was believed")
	}
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"127.0.0.6:1", "", "127.0.0.6:1"},
		{"127.0.0.6:1", "garbage", "127.0.0.6:1"},
		{"127.0.0.6:1", "192.0.2.1, 127.0.0.6", "192.0.2.1"},
		{"127.0.0.7:1", "192.0.2.1", "127.0.0.7:1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientAddr(r, []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// TestRateLimitBoundedMemory: a client that names a new scope in every
// request does not grow the limiter past MaxTracked buckets.
func TestRateLimitBoundedMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	rl := newRateLimiter(RateLimits{Scope: Rate{PerSecond: 1, Burst: 2}, MaxTracked: 64}, clock.now)
	for i := range 10_000 {
		rl.admit("c", fmt.Sprintf("scope-%d", i), "m")
	}
	if n := len(rl.scope.m); n > 64 {
		t.Fatalf("%d scope buckets kept, MaxTracked 64", n)
	}
}

// FuzzClientAddr: X-Forwarded-For and params are the client's bytes.
// clientAddr returns the TCP peer, or an address the header holds, and
// only when the peer is a trusted proxy; paramsScope never panics and
// returns only a string "scope" member.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.6:1", "192.0.2.1, 127.0.0.6", `{"scope":"a"}`)
	f.Add("[::1]:5", "2001:db8::1,,garbage", `{"scope":1}`)
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff, params string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := clientAddr(r, trusted)
		if got != remote {
			host, _, err := net.SplitHostPort(remote)
			if err != nil {
				host = remote
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !(trusted[0].Contains(ip.Unmap()) || trusted[1].Contains(ip.Unmap())) {
				t.Fatalf("untrusted peer %q charged to %q", remote, got)
			}
			if _, err := netip.ParseAddr(got); err != nil || !strings.Contains(xff, got) {
				t.Fatalf("%q from header %q", got, xff)
			}
		}
		if s := paramsScope(json.RawMessage(params)); s != "" {
			var p map[string]any
			if json.Unmarshal([]byte(params), &p) != nil {
				t.Fatalf("scope %q from invalid params %q", s, params)
			}
		}
	})
}
