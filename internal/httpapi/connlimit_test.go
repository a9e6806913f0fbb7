package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// capServer serves h on a LimitedListener with limits, through NewServer,
// on a real loopback socket, and counts the connections the server holds.
type capServer struct {
	ln   *LimitedListener
	url  string
	held atomic.Int64
}

func newCapServer(t testing.TB, h http.Handler, limits ConnLimits) *capServer {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &capServer{ln: LimitListener(raw, limits), url: "http://" + raw.Addr().String()}
	srv := NewServer(h, slog.New(slog.DiscardHandler))
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.held.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.held.Add(-1)
		}
	}
	go srv.Serve(cs.ln)
	t.Cleanup(func() { srv.Close() })
	return cs
}

// slowConns opens n connections from ip that each send half a request
// header and then nothing (a slowloris), and returns them.
func slowConns(t testing.TB, addr, ip string, n int) []net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	var out []net.Conn
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
		out = append(out, c)
	}
	t.Cleanup(func() {
		for _, c := range out {
			c.Close()
		}
	})
	return out
}

// healthz asks /healthz over a new connection from ip.
func healthz(t testing.TB, url, ip string) error {
	t.Helper()
	c := clientFrom(t.(*testing.T), ip)
	c.Transport.(*http.Transport).DisableKeepAlives = true
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v map[string]string
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil || v["status"] != "ok" {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// waitHeld waits until the server holds at most n connections (the
// evicted ones' goroutines close them asynchronously), less than
// ReadHeaderTimeout, which would close the slow ones anyway.
func (cs *capServer) waitHeld(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); cs.held.Load() > n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d connections, cap %d", cs.held.Load(), n)
		}
	}
}

// TestConnCapsSlowloris (issue 16): slow connections from a few addresses
// — far more than the caps — leave the server holding at most Max
// connections, at most PerClient of them per address, and /healthz
// answers a new connection from another address, and from the attacker's
// own address too (its oldest half-sent request is closed to make room).
// Without the caps the server holds every connection (here 300; 20,100
// exhausted a node's descriptors).
func TestConnCapsSlowloris(t *testing.T) {
	cs := newCapServer(t, NewHandler(Options{}), ConnLimits{Max: 64, PerClient: 16})
	addr := cs.url[len("http://"):]
	for i := range 6 {
		slowConns(t, addr, fmt.Sprintf("127.0.2.%d", i+1), 50)
	}
	cs.waitHeld(t, 64)
	if n := cs.ln.Open(); n > 64 {
		t.Fatalf("listener holds %d", n)
	}
	cs.ln.mu.Lock()
	for a, l := range cs.ln.byAddr {
		if l.Len() > 16 {
			t.Errorf("%s holds %d connections", a, l.Len())
		}
	}
	cs.ln.mu.Unlock()
	for _, ip := range []string{"127.0.0.1", "127.0.2.1"} {
		if err := healthz(t, cs.url, ip); err != nil {
			t.Fatalf("/healthz from %s under the flood: %v", ip, err)
		}
	}
	if cs.ln.Evicted() == 0 {
		t.Fatal("nothing evicted")
	}
}

// TestConnCapsServingKept: a connection whose request is being served is
// never closed to make room; when all of an address's connections are
// serving, its new connections are refused, and other addresses still get
// in.
func TestConnCapsServingKept(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	reg := NewRegistry()
	reg.Register("test_block", func(ctx context.Context, _ json.RawMessage) (any, error) {
		started.Done()
		<-release
		return "done", nil
	})
	cs := newCapServer(t, NewHandler(Options{Registry: reg}), ConnLimits{Max: 8, PerClient: 4})
	c := clientFrom(t, "127.0.3.1")
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 4)
	started.Add(4)
	for range 4 {
		go func() {
			resp, err := c.Post(cs.url+"/", "application/json",
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"test_block"}`))
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{body: string(b)}
		}()
	}
	started.Wait()
	if err := healthz(t, cs.url, "127.0.3.1"); err == nil {
		t.Fatal("a fifth connection from an address whose 4 are serving was admitted")
	}
	if err := healthz(t, cs.url, "127.0.3.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	close(release)
	for range 4 {
		r := <-results
		if r.err != nil || !json.Valid([]byte(r.body)) {
			t.Fatalf("a served request was cut: %v %q", r.err, r.body)
		}
	}
	if cs.ln.Refused() == 0 {
		t.Fatal("nothing refused")
	}
}
