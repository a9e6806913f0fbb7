package httpapi

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Connection rate per source (issue 16: a slowloris that reconnects as
// soon as it is closed kept /healthz above 1 s under 20,000 connections).
// The caps of LimitListener bound what the node holds, but each connection
// over a cap closes an older one, and an attacker that dials again at once
// turns every eviction into a new connect: about 20,000 connects a second,
// each served up to its half-sent header by an HTTP goroutine. The accept
// queue then overflows and an honest client's SYN waits for its
// retransmission (1 s, then 3 s).
//
// So LimitedListener first charges every new connection to a token bucket
// of its source (SourceOf: an IPv4 address or an IPv6 /64). A connection
// that finds its source's bucket empty never reaches the caps: it evicts
// nobody, gets no goroutine and no buffer, and its source's other
// connections are untouched.
//
// Such a connection is tarpitted on Linux (connaccept_linux.go: held
// unread in a bounded pool of raw descriptors for up to TarpitHold, then
// reset), not closed at once. Measured (BENCHMARKS.md), closing at once
// even with a reset only cut the node's cost per connect: the attacker's
// clients came back a moment later, the connect rate stayed at ~20,000 a
// second, and on 2 shared cores the accept queue still overflowed (p50
// 0.6–1 s). Holding is what slows a reconnecting client: each connection
// held is one it is not dialling again. Holding costs a descriptor and
// nothing else, so the pool is sized from the descriptor limit. Elsewhere,
// or past the pool, a connection over the rate is reset (SO_LINGER 0: no
// FIN exchange, no TIME_WAIT socket on the node, which at 20,000 closes a
// second would pile up by the million). Anything cheaper (a SYN never
// answered) is a firewall's job: docs/operations.md.
//
// The connect rate is not the request rate: an HTTP client keeps its
// connections alive, so the default (DefaultConnRate) is far above what a
// client needs and far below a flood. Trusted proxies (ConnLimits.Exempt)
// are not charged: every client behind them shares their address.

// DefaultConnRate is ConnLimits.Rate's default: new connections a second
// per source address, with the burst a client opening its pool at once
// (keymesh bench's 256 workers) needs.
var DefaultConnRate = Rate{PerSecond: 256, Burst: 1024}

// connRate is the per-source token buckets of new connections. Safe for
// concurrent use.
type connRate struct {
	rate       Rate
	exempt     []netip.Prefix
	maxTracked int
	now        func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

func newConnRate(r Rate, exempt []netip.Prefix, maxTracked int) *connRate {
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}
	return &connRate{rate: r, exempt: exempt, maxTracked: maxTracked, now: time.Now, m: map[netip.Addr]*bucket{}}
}

// sourceAddr is SourceOf for a connection's remote address as a map key,
// without formatting it: the IPv4 address, or the IPv6 /64's first
// address. ok is false for an address that is not an IP (never charged).
func sourceAddr(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr(), true
	}
	return ip, true
}

// allow takes a token for a new connection from src; false if its bucket
// is empty (nothing is taken then).
func (cr *connRate) allow(src netip.Addr) bool {
	if cr == nil || cr.rate.PerSecond <= 0 {
		return true
	}
	for _, p := range cr.exempt {
		if p.Contains(src) {
			return true
		}
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	now := cr.now()
	b := cr.m[src]
	if b == nil {
		if len(cr.m) >= cr.maxTracked {
			cr.forget(now)
		}
		b = &bucket{tokens: float64(cr.rate.Burst), last: now}
		cr.m[src] = b
	} else {
		b.refill(cr.rate, now)
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forget makes room in a full map: full buckets go first (a full bucket is
// the same as a new one), then arbitrary ones down to 7/8 of the bound, so
// that a flood of new sources costs one sweep per maxTracked/8 of them,
// not one per connection. cr.mu must be held.
func (cr *connRate) forget(now time.Time) {
	for k, b := range cr.m {
		if b.refill(cr.rate, now) {
			delete(cr.m, k)
		}
	}
	for k := range cr.m {
		if len(cr.m) <= cr.maxTracked-cr.maxTracked/8-1 {
			break
		}
		delete(cr.m, k)
	}
}

// tracked is the number of sources with a bucket.
func (cr *connRate) tracked() int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return len(cr.m)
}

// reset closes c at once with a TCP reset (SO_LINGER 0): no FIN exchange,
// no TIME_WAIT socket left behind.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
