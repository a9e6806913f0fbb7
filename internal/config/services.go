package config

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keymesh/keymesh/internal/netguard"
)

// Services is the node config's "services" section, read at start: what
// the node's services (the wallet today; vault, identity, relay and lambda
// services later) need from the operator, in one place. Every field may be
// left out:
//
//	"services": {
//	  "chain_ids": [1, 8453],
//	  "sign_timeout": "10s",
//	  "keygen_timeout": "60s",
//	  "chain_rpc": "https://rpc.example.org",
//	  "fetch_timeout": "10s",
//	  "outbound_allow": ["10.20.0.0/16", "rpc.internal"]
//	}
//
// chain_ids are the only chain ids eth_signTransaction signs for (empty:
// any non-zero one). sign_timeout and keygen_timeout bound one signing and
// one key generation attempt (defaults 10 s and 60 s). chain_rpc is the
// upstream chain's JSON-RPC URL, for services that read the chain. Every
// outbound fetch a service makes goes through Outbound's client: public
// addresses only, unless a host name or CIDR is in outbound_allow (see
// package netguard); fetch_timeout bounds each fetch (default 10 s).
type Services struct {
	ChainIDs      []uint64  `json:"chain_ids,omitempty"`
	SignTimeout   *Duration `json:"sign_timeout,omitempty"`
	KeygenTimeout *Duration `json:"keygen_timeout,omitempty"`
	ChainRPC      string    `json:"chain_rpc,omitempty"`
	FetchTimeout  *Duration `json:"fetch_timeout,omitempty"`
	OutboundAllow []string  `json:"outbound_allow,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"10s\"", s)
	}
	*d = Duration(v)
	return nil
}

// Default service timeouts.
const (
	DefaultSignTimeout   = 10 * time.Second
	DefaultKeygenTimeout = 60 * time.Second
	DefaultFetchTimeout  = 10 * time.Second
	maxServiceTimeout    = 10 * time.Minute
)

func orDefault(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

// SignTimeoutOr, KeygenTimeoutOr and FetchTimeoutOr are the configured
// timeouts, or the defaults; they take a nil *Services.
func (s *Services) SignTimeoutOr() time.Duration {
	if s == nil {
		return DefaultSignTimeout
	}
	return orDefault(s.SignTimeout, DefaultSignTimeout)
}

func (s *Services) KeygenTimeoutOr() time.Duration {
	if s == nil {
		return DefaultKeygenTimeout
	}
	return orDefault(s.KeygenTimeout, DefaultKeygenTimeout)
}

func (s *Services) FetchTimeoutOr() time.Duration {
	if s == nil {
		return DefaultFetchTimeout
	}
	return orDefault(s.FetchTimeout, DefaultFetchTimeout)
}

// Chains are the configured chain ids (nil: any); they take a nil
// *Services.
func (s *Services) Chains() []uint64 {
	if s == nil {
		return nil
	}
	return slices.Clone(s.ChainIDs)
}

// OutboundPolicy is the outbound fetch policy of the section (public
// addresses only, plus outbound_allow); it takes a nil *Services.
func (s *Services) OutboundPolicy() *netguard.Policy {
	var allow []string
	if s != nil {
		allow = s.OutboundAllow
	}
	p, err := netguard.Parse(allow)
	if err != nil { // check refused it already
		p, _ = netguard.Parse(nil)
	}
	return p
}

// Outbound is the HTTP client every outbound fetch of a service must use:
// OutboundPolicy's, with fetch_timeout.
func (s *Services) Outbound() *http.Client {
	return s.OutboundPolicy().Client(s.FetchTimeoutOr())
}

// check validates the section (nil is valid: every default).
func (s *Services) check() error {
	if s == nil {
		return nil
	}
	seen := map[uint64]bool{}
	for _, c := range s.ChainIDs {
		if c == 0 {
			return fmt.Errorf("chain_ids: 0 is not a chain id (EIP-155)")
		}
		if seen[c] {
			return fmt.Errorf("chain_ids: %d appears twice", c)
		}
		seen[c] = true
	}
	for name, d := range map[string]*Duration{"sign_timeout": s.SignTimeout, "keygen_timeout": s.KeygenTimeout, "fetch_timeout": s.FetchTimeout} {
		if d != nil && (*d <= 0 || time.Duration(*d) > maxServiceTimeout) {
			return fmt.Errorf("%s %s: want more than 0 and at most %s", name, time.Duration(*d), maxServiceTimeout)
		}
	}
	p, err := netguard.Parse(s.OutboundAllow)
	if err != nil {
		return fmt.Errorf("outbound_allow: %v", err)
	}
	if s.ChainRPC != "" {
		u, err := url.Parse(s.ChainRPC)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("chain_rpc: %q is not an http or https URL", s.ChainRPC)
		}
		if err := p.CheckURL(u); err != nil {
			return fmt.Errorf("chain_rpc: %v", err)
		}
	}
	return nil
}
