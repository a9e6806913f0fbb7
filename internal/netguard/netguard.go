// Package netguard decides which addresses a node may open outbound
// connections to, and gives the dialer and HTTP client that enforce it: a
// node fetches from the public internet only (a chain's RPC, a JWKS, a
// webhook), never from its own loopback, its private network or the
// cloud's metadata service (169.254.169.254), unless the operator allows
// those hosts by name or CIDR (config "services.outbound_allow").
//
// Why at dial time: a URL's host is checked when the connection is made,
// on the address DNS resolved it to (net.Dialer.Control sees the IP the
// socket is about to connect to), so a name that resolves to a private
// address — or resolves to a public one at a first lookup and a private one
// at the next (DNS rebinding) — is refused all the same. Every redirect
// dials again through the same check, and CheckRedirect refuses other
// schemes and long chains before that. No proxy is used (a proxy would be
// the only address the check sees).
//
// Non-public addresses are those of the IANA special-purpose address
// registries (RFC 6890 and its updates) that are not globally reachable:
// unspecified (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), private (RFC
// 1918 10/8, 172.16/12, 192.168/16; RFC 4193 fc00::/7), shared address
// space (RFC 6598 100.64/10), link-local (RFC 3927 169.254/16, fe80::/10),
// multicast and broadcast, documentation and benchmarking ranges, reserved
// 240/4, IETF protocol assignments (192.0.0.0/24), site-local fec0::/10,
// discard 100::/64, and the IPv6 forms that embed an IPv4 address a host
// may route to (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32), which are judged by
// the IPv4 address they embed or refused.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every refusal of an address or URL.
var ErrRefused = errors.New("netguard: outbound address refused")

// RefusedError names the address refused and why.
type RefusedError struct {
	Addr   string // an IP address, or a URL
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("netguard: outbound connection to %s refused: %s (allow it in services.outbound_allow)", e.Addr, e.Reason)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Policy says which non-public destinations are allowed. The zero Policy
// allows public addresses only.
type Policy struct {
	prefixes []netip.Prefix
	hosts    map[string]bool // lower case, no trailing dot
}

// Parse makes a Policy from the operator's allow list: each entry is a
// CIDR prefix ("10.1.0.0/16", "fd00::/8"), an IP address (a /32 or /128)
// or a host name ("rpc.internal"), whose connections may then go to any
// address its name resolves to.
func Parse(allow []string) (*Policy, error) {
	p := &Policy{hosts: map[string]bool{}}
	for _, s := range allow {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return nil, errors.New("netguard: empty entry in the allow list")
		case strings.Contains(s, "/"):
			pr, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("netguard: %q is not a CIDR prefix", s)
			}
			p.prefixes = append(p.prefixes, pr.Masked())
		default:
			if a, err := netip.ParseAddr(s); err == nil {
				p.prefixes = append(p.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			h := canonicalHost(s)
			if !validHostname(h) {
				return nil, fmt.Errorf("netguard: %q is not a host name, IP address or CIDR prefix", s)
			}
			p.hosts[h] = true
		}
	}
	return p, nil
}

func canonicalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// HostAllowed reports whether host (a name) is on the allow list: its
// connections skip the address check.
func (p *Policy) HostAllowed(host string) bool {
	return p != nil && p.hosts[canonicalHost(host)]
}

// CheckAddr returns nil if a connection to ip is allowed: ip is public,
// or inside an allowed prefix. Otherwise it returns a *RefusedError.
func (p *Policy) CheckAddr(ip netip.Addr) error {
	ip = ip.WithZone("")
	if p != nil {
		for _, pr := range p.prefixes {
			if pr.Contains(ip.Unmap()) || pr.Contains(ip) {
				return nil
			}
		}
	}
	if why := nonPublic(ip); why != "" {
		return &RefusedError{Addr: ip.String(), Reason: why}
	}
	return nil
}

// Special-purpose ranges netip.Addr has no method for.
var special = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (unspecified)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (and broadcast)"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (embeds an IPv4 address)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// nonPublic returns why ip is not a public unicast address, or "".
func nonPublic(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not an IP address"
	}
	if ip.Is4In6() {
		if why := nonPublic(ip.Unmap()); why != "" {
			return why + ", as an IPv4-mapped IPv6 address"
		}
		return ""
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.why
		}
	}
	// IPv6 forms that carry an IPv4 destination: judge the IPv4 address.
	if nat64.Contains(ip) || sixToFour.Contains(ip) {
		b := ip.As16()
		var v4 netip.Addr
		if nat64.Contains(ip) {
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		} else {
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if why := nonPublic(v4); why != "" {
			return why + ", embedded in an IPv6 address"
		}
	}
	return ""
}

// Dialer returns a dialer that refuses, after DNS resolution, every
// address CheckAddr refuses: its Control hook runs on the IP and port the
// socket is about to connect to.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: p.control}
}

func (p *Policy) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" && network != "udp4" && network != "udp6" {
		return &RefusedError{Addr: address, Reason: "network " + network + " is not TCP or UDP"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Addr: address, Reason: "not an IP address and port"}
	}
	return p.CheckAddr(ap.Addr())
}

// DialContext dials address (host:port) over network: a host on the allow
// list by name may connect wherever it resolves; any other host only to
// addresses CheckAddr allows, checked after resolution.
func (p *Policy) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &RefusedError{Addr: address, Reason: "not host:port"}
	}
	if p.HostAllowed(host) {
		open := *d
		open.Control = nil
		return open.DialContext(ctx, network, address)
	}
	guarded := *d
	guarded.Control = p.control
	return guarded.DialContext(ctx, network, address)
}

// MaxRedirects bounds the redirects a Client follows.
const MaxRedirects = 5

// Client returns an HTTP client for outbound fetches under p: every
// connection (redirects' included) goes through DialContext, no proxy is
// used, a redirect must stay on http or https, and at most MaxRedirects
// are followed; timeout bounds each whole request.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: min(timeout, 30*time.Second)}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return p.DialContext(ctx, d, network, address)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: p.checkRedirect}
}

// checkRedirect vets a redirect before it is followed; the connection it
// needs is checked again when it is dialled.
func (p *Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
	}
	return p.CheckURL(req.URL)
}

// CheckURL refuses a URL that is not http or https, carries user info, or
// names a literal IP address CheckAddr refuses. (A host name is checked
// when it is dialled, on the addresses it resolves to.)
func (p *Policy) CheckURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return &RefusedError{Addr: u.Redacted(), Reason: "scheme must be http or https"}
	}
	if u.User != nil {
		return &RefusedError{Addr: u.Redacted(), Reason: "user info in the URL"}
	}
	host := u.Hostname()
	if host == "" {
		return &RefusedError{Addr: u.Redacted(), Reason: "no host"}
	}
	if p.HostAllowed(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(ip)
	}
	return nil
}
