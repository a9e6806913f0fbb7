package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reconnectingFlood runs n clients from each of ips against addr until
// stop is closed: each dials, sends half a request header, waits until the
// server closes the connection, and dials again at once (the reconnecting
// slowloris of issue 16). It returns the number of connections dialled
// and a function that waits for the clients to end.
func reconnectingFlood(addr string, ips []string, n int, stop <-chan struct{}) (*atomic.Int64, func()) {
	var dialled atomic.Int64
	var wg sync.WaitGroup
	for _, ip := range ips {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: time.Second}
		for range n {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					dialled.Add(1)
					c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
					go func() { <-stop; c.Close() }()
					io.Copy(io.Discard, c) // until the server closes it
					c.Close()
				}
			})
		}
	}
	return &dialled, wg.Wait
}

// slowHealthz asks /healthz over a new connection from ip that, like a
// client on a slow link, sends its request only after delay; nil if the
// answer is 200.
func slowHealthz(addr, ip string, delay time.Duration) error {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	time.Sleep(delay)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// TestReconnectingFloodLeavesOthersServed (issue 16): 8 addresses × 50
// clients reconnect as soon as they are closed. Without a connection rate
// every reconnect evicts the oldest idle connection, so the churn closes
// an honest client's fresh connection from another address before its
// request arrives (a request sent 100 ms after connecting: 0 to a few of
// 10 served on the code before connrate.go). With the connection rate the
// flood's reconnects beyond each address's bucket never reach the caps,
// and every honest request is served.
func TestReconnectingFloodLeavesOthersServed(t *testing.T) {
	cs := newCapServer(t, NewHandler(Options{}), ConnLimits{Max: 64, PerClient: 16, Rate: Rate{PerSecond: 5, Burst: 20}})
	addr := cs.url[len("http://"):]
	var ips []string
	for i := range 8 {
		ips = append(ips, fmt.Sprintf("127.0.4.%d", i+1))
	}
	stop := make(chan struct{})
	dialled, wait := reconnectingFlood(addr, ips, 50, stop)
	defer func() {
		close(stop)
		cs.ln.Close() // resets the tarpitted connections
		wait()
	}()
	for deadline := time.Now().Add(5 * time.Second); cs.ln.RateRefused() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flood was not refused for its rate: %d dialled, %d refused", dialled.Load(), cs.ln.RateRefused())
		}
	}
	served := 0
	var errs []string
	for range 10 {
		if err := slowHealthz(addr, "127.0.0.1", 100*time.Millisecond); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		served++
	}
	t.Logf("honest: %d/10 served; flood: %d dialled, %d refused for their rate, %d evicted", served, dialled.Load(), cs.ln.RateRefused(), cs.ln.Evicted())
	if served != 10 {
		t.Fatalf("honest requests from another address served %d/10 under the flood: %s", served, strings.Join(errs, "; "))
	}
	// Each address got at most its burst plus its rate through to the caps.
	if admitted := cs.ln.Evicted() + int64(cs.ln.Open()); admitted > int64(len(ips))*(20+5*10)+10 {
		t.Fatalf("%d flood connections reached the caps", admitted)
	}
}

// TestConnRateBuckets: a source gets its burst, then its rate; another
// source and exempt sources are not charged; the map stays bounded.
func TestConnRateBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	cr := newConnRate(Rate{PerSecond: 2, Burst: 3}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 16)
	cr.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if !cr.allow(a) {
			t.Fatalf("connection %d within the burst refused", i)
		}
	}
	if cr.allow(a) {
		t.Fatal("connection over the burst allowed")
	}
	if !cr.allow(b) {
		t.Fatal("another source refused")
	}
	now = now.Add(500 * time.Millisecond)
	if !cr.allow(a) || cr.allow(a) {
		t.Fatal("after 0.5 s at 2/s: want exactly one more")
	}
	for range 100 {
		if !cr.allow(netip.MustParseAddr("10.1.2.3")) {
			t.Fatal("exempt source refused")
		}
	}
	for i := range 100 {
		cr.allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	if n := cr.tracked(); n > 16 {
		t.Fatalf("%d sources tracked, bound 16", n)
	}
}

// TestSourceAddr: IPv4 (also mapped) by address, IPv6 by /64, as SourceOf.
func TestSourceAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:443":           "192.0.2.7",
		"[::ffff:192.0.2.7]:443":  "192.0.2.7",
		"[2001:db8:1:2:3::4]:443": "2001:db8:1:2::",
	} {
		ap := netip.MustParseAddrPort(in)
		got, ok := sourceAddr(net.TCPAddrFromAddrPort(ap))
		if !ok || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, ok, want)
		}
		if p := SourceOf(in); !strings.HasPrefix(p, want) {
			t.Errorf("SourceOf(%s) = %s, sourceAddr %s", in, p, want)
		}
	}
}
