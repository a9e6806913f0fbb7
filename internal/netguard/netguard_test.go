package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNonPublicAddressesRefused(t *testing.T) {
	var p *Policy // the zero policy: public addresses only
	for _, s := range []string{
		"10.0.0.1", "10.255.255.255", "172.16.0.1", "192.168.1.1",
		"127.0.0.1", "127.8.9.10", "::1",
		"169.254.169.254", "fe80::1", "fe80::1%eth0",
		"0.0.0.0", "0.1.2.3", "::",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", "255.255.255.255",
		"100.64.0.1", "192.0.0.8", "192.0.2.1", "198.18.0.1", "240.0.0.1",
		"fc00::1", "fd12:3456::1", "fec0::1", "2001:db8::1", "100::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",
	} {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		err = p.CheckAddr(a)
		var re *RefusedError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &re) {
			t.Errorf("%s: allowed", s)
		}
	}
	for _, s := range []string{"1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::1", "172.32.0.1", "100.128.0.1"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s (public) refused: %v", s, err)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := Parse([]string{"10.1.0.0/16", "127.0.0.1", "RPC.Internal.", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"10.1.2.3", "127.0.0.1", "::ffff:127.0.0.1", "fd00::5"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s is allowed, refused: %v", s, err)
		}
	}
	for _, s := range []string{"10.2.0.1", "127.0.0.2", "169.254.169.254"} {
		if err := p.CheckAddr(netip.MustParseAddr(s)); err == nil {
			t.Errorf("%s is not allowed, accepted", s)
		}
	}
	if !p.HostAllowed("rpc.internal") || p.HostAllowed("internal") || p.HostAllowed("x.rpc.internal") {
		t.Error("host names match exactly (case and a trailing dot aside)")
	}
	for _, bad := range []string{"", "10.0.0.0/33", "a b", "http://x", "-x.example"} {
		if _, err := Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// dialRefused dials address through the guarded dialer: the Control hook
// must refuse before any connection is made.
func TestDialRefusesLiterals(t *testing.T) {
	p, _ := Parse(nil)
	// A real listener on loopback: refused although it would answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := p.Dialer(2 * time.Second)
	for _, host := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"} {
		addr := net.JoinHostPort(host, port)
		_, err := p.DialContext(context.Background(), d, "tcp", addr)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("dial %s: %v, want refusal", addr, err)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections", n)
	}
}

// TestHostnameResolvingToLoopback: the check runs on the resolved address,
// so a name (here localhost, which resolves to 127.0.0.1 or ::1) cannot
// carry a request to loopback.
func TestHostnameResolvingToLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.Host = net.JoinHostPort("localhost", u.Port())
	p, _ := Parse(nil)
	if err := p.CheckURL(u); err != nil {
		t.Fatalf("CheckURL refused a name before resolving it: %v", err)
	}
	_, err := p.Client(5 * time.Second).Get(u.String())
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("GET %s: %v, want refusal", u, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the loopback server was reached")
	}
}

func TestAllowedLoopbackWorks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	for _, allow := range []string{"127.0.0.0/8", "127.0.0.1", "localhost"} {
		p, err := Parse([]string{allow})
		if err != nil {
			t.Fatal(err)
		}
		target := srv.URL
		if allow == "localhost" {
			target = "http://" + net.JoinHostPort("localhost", u.Port())
		}
		resp, err := p.Client(5 * time.Second).Get(target)
		if err != nil {
			t.Fatalf("allow %s: GET %s: %v", allow, target, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("allow %s: body %q", allow, b)
		}
	}
}

// TestRedirectToLoopbackRefused: a server the node may fetch from (allowed
// by name) redirects to a loopback address it may not; the redirect is
// not followed and the loopback server is never reached.
func TestRedirectToLoopbackRefused(t *testing.T) {
	var hits atomic.Int32
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer inner.Close()
	innerURL, _ := url.Parse(inner.URL)
	targets := map[string]string{
		"literal":  inner.URL + "/secret",                                             // 127.0.0.1:port
		"mapped":   "http://" + net.JoinHostPort("::ffff:127.0.0.1", innerURL.Port()), // IPv4-mapped
		"metadata": "http://169.254.169.254/latest/meta-data/",
		"file":     "file:///etc/passwd",
	}
	for name, to := range targets {
		outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to, http.StatusFound)
		}))
		ou, _ := url.Parse(outer.URL)
		p, _ := Parse([]string{"localhost"})
		_, err := p.Client(5 * time.Second).Get("http://" + net.JoinHostPort("localhost", ou.Port()) + "/")
		outer.Close()
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: redirect to %s: %v, want refusal", name, to, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("a redirect reached the loopback server")
	}
}

func TestTooManyRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/again", http.StatusFound)
	}))
	defer srv.Close()
	p, _ := Parse([]string{"127.0.0.1"})
	_, err := p.Client(5 * time.Second).Get(srv.URL)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("endless redirects: %v", err)
	}
}
