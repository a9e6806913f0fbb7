package auth

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// OriginPolicy is the cluster-wide rule on a scope's WebAuthn origins
// (docs/auth.md, "Scope origins in production"). In production a scope
// may not list an origin on a node's host: that node's operator serves
// the pages of its own host, so it could ask the user's passkey for
// assertions over challenges of its choosing (a session for a key it
// holds). Apps serve the login bundle (package web) from their own
// origin instead.
//
// Apply refuses scope.create and scope.update records that break it, so
// every node of a cluster must have the same policy (config.Node's
// production and node_hosts, the same on every node): the refusal is then
// a function of the record alone and every node converges. The zero
// value is development: any origin is allowed.
type OriginPolicy struct {
	// Production turns the rule on.
	Production bool
	// NodeHosts are the hosts (names or IP addresses, compared without
	// case) at which the cluster's nodes are reached.
	NodeHosts []string
}

// check refuses a config listing an origin on a node host, in
// production.
func (p OriginPolicy) check(cfg *record.ScopeConfig) error {
	if !p.Production {
		return nil
	}
	for _, o := range cfg.Origins {
		u, err := url.Parse(o)
		if err != nil {
			continue // record.ScopeConfig's own checks judge the form
		}
		h := u.Hostname()
		if slices.ContainsFunc(p.NodeHosts, func(n string) bool { return sameHost(n, h) }) {
			return deny(api.CodeAuthBadProof, "origin %s is on a node's host (%s): production scopes list their app's own origins, which serve the login bundle; node origins are for development clusters only", o, h)
		}
	}
	return nil
}

// sameHost reports whether two host names or IP addresses name the same
// host: names without case or a final dot, addresses by value (a node host
// written "[::1]" or "0:0::1" is the origin http://[::1]:8080's host).
func sameHost(a, b string) bool {
	a, b = canonicalHost(a), canonicalHost(b)
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x.Unmap() == y.Unmap()
	}
	return a == b
}

func canonicalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "."))
}
