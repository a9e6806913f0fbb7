package transport

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Quotas on the peer port. A configured peer is authenticated, not
// trusted: each peer gets its own share of every resource a peer's traffic
// can hold, so a malicious one exhausts only its own share. Unauthenticated
// sockets hold only handshake slots, bounded per source address and in
// time. docs/operations.md ("Peer port limits") lists them for operators.
const (
	// maxHandshakes bounds the TLS handshakes in progress on the peer port,
	// over all listeners. A connection that arrives when every slot is
	// taken evicts the oldest handshake of the source address holding the
	// most slots, if that address holds more than the newcomer's; otherwise
	// the newcomer is closed. So a configured peer's redial, one handshake
	// from its address, always gets a slot: to keep it out an attacker must
	// open maxHandshakes new connections within that one handshake's round
	// trips.
	maxHandshakes = 64
	// maxHandshakesPerAddr bounds the handshakes in progress from one
	// source IP address; more are closed at once. Each peer dials at most
	// one connection at a time, and every peer of the largest cluster
	// (n ≤ 16) may sit behind one address (a dev cluster on one host, NAT).
	maxHandshakesPerAddr = 16
	// handshakeTimeout bounds an inbound TLS handshake (the dialling side
	// uses Options.DialTimeout). A TLS 1.3 handshake with client
	// certificates is one and a half round trips and two Ed25519
	// signatures: tens of milliseconds between data centres, so 2 s is
	// ample on any link, and an idle socket holds a slot for 2 s at most.
	handshakeTimeout = 2 * time.Second

	// maxInboundPerPeer bounds the authenticated connections one peer has
	// open to this node. An honest peer keeps one (its outbound link) and
	// has a second only briefly, when it redials before this side saw the
	// old one fail. A further connection closes that peer's oldest one:
	// the newest is the one a redialling peer uses, and a peer can only
	// close its own.
	maxInboundPerPeer = 4

	// maxConcurrentCalls bounds the RPC handlers running for one peer,
	// over all its connections; further requests are answered "busy". An
	// honest peer calls over its one outbound link, so this is the limit
	// it always had (it was per connection).
	maxConcurrentCalls = 64
	// maxCallBytesPerPeer bounds the request bodies held by one peer's
	// running handlers (at most MaxBody each); a request that would go
	// over is answered "busy". Without it, 64 handlers could hold 256 MiB
	// per peer. Honest requests (invitations, records, catch-up queries)
	// are kilobytes.
	maxCallBytesPerPeer = 16 << 20
	// A compile-time check that one largest request always fits.
	_ = uint(maxCallBytesPerPeer - MaxBody)

	// pendingPerSession bounds the messages one peer has buffered for one
	// session that is not running here yet. An honest peer sends a few
	// per round, and a session is started on every party at about the same
	// time.
	pendingPerSession = 64
	// pendingMaxBytes bounds the payload bytes buffered for sessions not
	// running here yet, over all peers: each configured peer gets an equal
	// share (but at least one largest message), and a peer over its share,
	// or over Options.PendingMax messages, loses its own oldest messages.
	pendingMaxBytes = 64 << 20
	// maxMessageBytes is the largest payload and echo of one round message.
	maxMessageBytes = round.MaxPayload + round.MaxEcho
	// pendingOverhead is counted per buffered message on top of its
	// payload, so that many tiny messages also fill a peer's share.
	pendingOverhead = 128
)

// abuseLogInterval is the least time between two warnings about refused
// or evicted connections; those in between are logged at debug level and
// counted in the next warning, so sockets that fail their handshake by the
// thousand, or a peer churning connections, cannot flood the node's log.
// Stats.ConnsRejected counts them all.
const abuseLogInterval = time.Second

// warnAbuse logs msg at warning level at most once per abuseLogInterval,
// at debug level otherwise.
func (t *Transport) warnAbuse(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := t.abuseLogAt.Load()
	if now-last < int64(abuseLogInterval) || !t.abuseLogAt.CompareAndSwap(last, now) {
		t.abuseQuiet.Add(1)
		t.log.Debug(msg, args...)
		return
	}
	t.log.Warn(msg, append(args, "suppressed_since_last_warning", t.abuseQuiet.Swap(0))...)
}

// errTooManyConns closes a peer's oldest inbound connection when the peer
// opens one more than maxInboundPerPeer.
var errTooManyConns = errors.New("transport: peer opened more connections than allowed; closed its oldest")

// handshake is one inbound connection whose TLS handshake is in progress.
type handshake struct {
	c       net.Conn
	addr    netip.Addr // source IP; the zero Addr for non-IP listeners
	start   time.Time
	evicted bool // its slot went to a newer connection; guarded by hsMu
}

func sourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// admitHandshake takes a handshake slot for c, evicting an older handshake
// if all are taken (see maxHandshakes). It returns nil if c must be closed.
func (t *Transport) admitHandshake(c net.Conn) *handshake {
	h := &handshake{c: c, addr: sourceAddr(c), start: time.Now()}
	var victim *handshake
	t.hsMu.Lock()
	mine := len(t.hs[h.addr])
	if mine >= maxHandshakesPerAddr {
		t.hsMu.Unlock()
		return nil
	}
	if t.hsCount >= maxHandshakes {
		for _, l := range t.hs {
			if len(l) > mine && (victim == nil || len(l) > len(t.hs[victim.addr]) ||
				len(l) == len(t.hs[victim.addr]) && l[0].start.Before(victim.start)) {
				victim = l[0]
			}
		}
		if victim == nil {
			t.hsMu.Unlock()
			return nil
		}
		victim.evicted = true
		t.removeHandshakeLocked(victim)
	}
	t.hs[h.addr] = append(t.hs[h.addr], h)
	t.hsCount++
	t.hsMu.Unlock()
	if victim != nil {
		victim.c.Close() // its handshake fails; accept counts the rejection
	}
	return h
}

// releaseHandshake frees h's slot, unless an eviction already took it.
func (t *Transport) releaseHandshake(h *handshake) {
	t.hsMu.Lock()
	if !h.evicted {
		t.removeHandshakeLocked(h)
	}
	t.hsMu.Unlock()
}

func (t *Transport) removeHandshakeLocked(h *handshake) {
	l := t.hs[h.addr]
	for i, x := range l {
		if x == h {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(t.hs, h.addr)
	} else {
		t.hs[h.addr] = l
	}
	t.hsCount--
}

// addInbound registers an authenticated inbound connection and returns the
// peer's oldest one if the peer now has more than maxInboundPerPeer; the
// caller closes it. It returns false if the transport is closed.
func (t *Transport) addInbound(pc *peerConn) (evict *peerConn, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	t.inbound[pc] = struct{}{}
	l := append(t.inboundBy[pc.peer], pc)
	if len(l) > maxInboundPerPeer {
		evict = l[0]
		l = l[1:]
	}
	t.inboundBy[pc.peer] = l
	return evict, true
}

func (t *Transport) removeInbound(pc *peerConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.inbound, pc)
	l := t.inboundBy[pc.peer]
	for i, x := range l {
		if x == pc {
			t.inboundBy[pc.peer] = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(t.inboundBy[pc.peer]) == 0 {
		delete(t.inboundBy, pc.peer)
	}
}
