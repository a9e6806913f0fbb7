package config

import (
	"fmt"
	"math"
	"net/netip"
)

// APILimits are the limits of the node's public API port against clients
// that are not its users (issue 16; docs/operations.md, "Rate limits,
// connection caps and metrics"). Every field is optional: zero keeps the
// default, which suits keymesh dev and a node serving many apps' users.
//
//	"api_limits": {
//	  "client_per_second": 1000, "client_burst": 2000,
//	  "scope_per_second": 2000, "scope_burst": 4000,
//	  "ceremony_client_per_second": 5, "ceremony_client_burst": 20,
//	  "ceremony_scope_per_second": 50, "ceremony_scope_burst": 200,
//	  "max_conns": 4096, "max_conns_per_client": 256,
//	  "conn_per_second": 256, "conn_burst": 1024,
//	  "trusted_proxies": ["10.0.0.5/32"]
//	}
//
// A per-second rate of -1 turns that bucket off. The client address is the
// TCP peer's (an IPv6 client's /64); behind a reverse proxy, list it in
// trusted_proxies so that the address it appends to X-Forwarded-For is
// used instead (otherwise all its clients share one address's limits).
type APILimits struct {
	ClientPerSecond         float64 `json:"client_per_second,omitempty"`
	ClientBurst             int     `json:"client_burst,omitempty"`
	ScopePerSecond          float64 `json:"scope_per_second,omitempty"`
	ScopeBurst              int     `json:"scope_burst,omitempty"`
	CeremonyClientPerSecond float64 `json:"ceremony_client_per_second,omitempty"`
	CeremonyClientBurst     int     `json:"ceremony_client_burst,omitempty"`
	CeremonyScopePerSecond  float64 `json:"ceremony_scope_per_second,omitempty"`
	CeremonyScopeBurst      int     `json:"ceremony_scope_burst,omitempty"`
	MaxConns                int     `json:"max_conns,omitempty"`
	MaxConnsPerClient       int     `json:"max_conns_per_client,omitempty"`
	// ConnPerSecond and ConnBurst bound the new connections a second from
	// one client address (default 256, burst 1,024; -1: none): a
	// reconnecting slowloris is held there, before any cap.
	ConnPerSecond  float64  `json:"conn_per_second,omitempty"`
	ConnBurst      int      `json:"conn_burst,omitempty"`
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
}

// Proxies parses TrustedProxies (validated by Load): CIDR prefixes, or
// single addresses.
func (l *APILimits) Proxies() []netip.Prefix {
	if l == nil {
		return nil
	}
	var out []netip.Prefix
	for _, s := range l.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (l *APILimits) check() error {
	if l == nil {
		return nil
	}
	for _, r := range []struct {
		name  string
		rate  float64
		burst int
	}{
		{"client", l.ClientPerSecond, l.ClientBurst},
		{"scope", l.ScopePerSecond, l.ScopeBurst},
		{"ceremony_client", l.CeremonyClientPerSecond, l.CeremonyClientBurst},
		{"ceremony_scope", l.CeremonyScopePerSecond, l.CeremonyScopeBurst},
		{"conn", l.ConnPerSecond, l.ConnBurst},
	} {
		if math.IsNaN(r.rate) || (r.rate < 0 && r.rate != -1) || r.rate > 1e9 {
			return fmt.Errorf("%s_per_second %v: want a positive rate, 0 for the default or -1 for none", r.name, r.rate)
		}
		if r.burst < 0 || r.burst > 1e9 {
			return fmt.Errorf("%s_burst %d: want 1..1e9, or 0 for the default", r.name, r.burst)
		}
	}
	if l.MaxConns < 0 || l.MaxConnsPerClient < 0 {
		return fmt.Errorf("max_conns and max_conns_per_client must be positive (0 for the default)")
	}
	if l.MaxConns > 0 && l.MaxConnsPerClient > l.MaxConns {
		return fmt.Errorf("max_conns_per_client %d exceeds max_conns %d", l.MaxConnsPerClient, l.MaxConns)
	}
	for i, s := range l.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			return fmt.Errorf("trusted_proxies[%d]: %v", i, err)
		}
	}
	return nil
}
