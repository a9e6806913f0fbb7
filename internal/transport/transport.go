// Package transport carries keymesh's peer traffic: mutually authenticated
// TLS 1.3 links between nodes, MPC sessions (round.Session) run over them,
// and a small request/response RPC for invitations and catch-up.
//
// # Authentication
//
// There is no CA. Every node presents a certificate self-signed by its
// Ed25519 identity key (config.Identity); each side pins the other's key
// from the cluster config (config.Peer.IdentityKey) in
// tls.Config.VerifyConnection. TLS 1.3's CertificateVerify (RFC 8446
// §4.4.3) proves the peer holds that key. A connection from a key that is
// not in the config is refused during the handshake, as is a server whose
// key is not the one configured for the id we dialled. The peer id of a link
// comes from the key, never from what the peer says: a round message whose
// From differs from the link's peer id is dropped.
//
// # Cluster policy
//
// Each node's certificate also carries its cluster policy digest
// (config.PolicyDigest), and each side of a link compares the peer's with
// its own right after the handshake: a peer whose policy differs is
// refused both ways and reported as a policy mismatch (policy.go).
//
// # Links
//
// Each node dials every peer once and keeps that connection (its outbound
// link) up: it pings it every PingInterval, closes it when nothing arrives
// for PingTimeout, and redials with exponential backoff. A node sends
// protocol messages and calls only over its outbound links and answers calls
// and pings on the connections peers dialled to it, so a pair of nodes
// shares two connections, one per direction, multiplexed by session id and
// call id. Frames are length-prefixed, versioned and decoded strictly (see
// frame.go).
//
// # Sessions
//
// RunSession drives a round.Session: it sends what the session produces
// (a broadcast is the same message sent to each peer; the round engine's
// echo check catches a peer that sends different ones) and feeds it what
// arrives. Messages for a session that is not (yet) running here are kept
// for PendingTTL, so a peer may start first: at most PendingMax of them and
// an equal share of pendingMaxBytes per peer, so that a peer flooding
// session ids evicts only its own messages.
//
// # Limits
//
// Each configured peer has its own quotas: buffered messages (above),
// authenticated inbound connections (maxInboundPerPeer; a further one
// closes the peer's oldest) and running RPC handlers (maxConcurrentCalls).
// A frame's buffer grows as its bytes arrive (frameChunk), never from its
// announced length. Unauthenticated sockets hold only handshake slots:
// maxHandshakes in all, maxHandshakesPerAddr per source address, each for
// at most handshakeTimeout. limits.go has the numbers and the reasons.
// A session fails with *PeerDownError as soon as a peer it needs is
// unreachable, and with *TimeoutError naming the parties it waits for when
// SessionTimeout passes.
//
// Library code: it never logs unless the daemon injects a *slog.Logger.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Options configure a Transport. Self and Identity are required; zero
// durations take the defaults named beside them.
type Options struct {
	Self     *config.Node
	Identity *config.Identity
	// Logger receives connection events (refused keys, links up and down).
	// Nil discards them.
	Logger *slog.Logger

	DialTimeout    time.Duration // dial + TLS handshake; default 5s
	SessionTimeout time.Duration // per RunSession, and per Call without a deadline; default 30s
	PingInterval   time.Duration // keep-alive on each link; default 2s
	// PingTimeout is the silence after which a link is closed; default
	// 3×PingInterval but at least 2s. It must exceed the peers'
	// PingInterval. A peer process that dies is noticed at once from its
	// closed connection; this only catches silent failures (a partition, a
	// hung host), and too short a value breaks links under load.
	PingTimeout time.Duration
	PendingTTL  time.Duration // how long messages for an unknown session are kept; default 10s
	PendingMax  int           // how many such messages are kept at most per peer; default 1024

	// PolicyDigest is the cluster policy digest this node presents to its
	// peers and requires of them (policy.go); nil means Self's
	// (config.Node.PolicyDigest), which is what a node uses. Tests set it
	// to play a node whose operator lies about its policy.
	PolicyDigest *config.PolicyDigest
}

// Handler answers one peer RPC. from is the authenticated peer id. The
// returned error's text is sent to the caller (at most 1024 bytes), so it
// must not hold secrets. ctx is cancelled when the connection closes or
// the transport is closed.
type Handler func(ctx context.Context, from uint16, body []byte) ([]byte, error)

// Transport is one node's set of peer links. Its methods are safe for
// concurrent use.
type Transport struct {
	self   uint16
	opts   Options
	log    *slog.Logger
	cert   tls.Certificate
	server *tls.Config
	links  map[uint16]*link
	byKey  map[string]uint16
	policy config.PolicyDigest // presented and required (policy.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// callSlots and callBytes bound each peer's running handlers
	// (maxConcurrentCalls, maxCallBytesPerPeer); pendingPeerBytes is each peer's share of pendingMaxBytes. Both are
	// fixed in New.
	callSlots        map[uint16]chan struct{}
	callBytes        map[uint16]*atomic.Int64 // request bytes held by running handlers
	pendingPeerBytes int

	mu        sync.Mutex
	closed    bool
	handlers  map[string]Handler
	sessions  map[round.SessionID]*runner
	pending   map[uint16]*peerPending // keys fixed in New: one per peer
	pendSeq   uint64
	listeners map[net.Listener]struct{}
	inbound   map[*peerConn]struct{}
	inboundBy map[uint16][]*peerConn // per peer, oldest first

	// abuseLogAt and abuseQuiet rate-limit warnings about refused and
	// evicted connections (warnAbuse).
	abuseLogAt atomic.Int64
	abuseQuiet atomic.Uint64

	hsMu    sync.Mutex
	hs      map[netip.Addr][]*handshake // in progress, per source address, oldest first
	hsCount int

	stats counters

	// testingOnlyAlterOutgoing, when set, may change each outgoing round
	// message per recipient (a private copy), to play a misbehaving node.
	testingOnlyAlterOutgoing func(to uint16, m *round.Message)
}

// New checks opts, makes the node's certificate and starts keeping a link
// to every peer. Call Serve to accept the peers' links, Close when done.
func New(opts Options) (*Transport, error) {
	if opts.Self == nil || opts.Identity == nil {
		return nil, errors.New("transport: Options.Self and Options.Identity are required")
	}
	if err := opts.Self.Validate(); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 30 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 2 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = max(3*opts.PingInterval, 2*time.Second)
	}
	if opts.PendingTTL <= 0 {
		opts.PendingTTL = 10 * time.Second
	}
	if opts.PendingMax <= 0 {
		opts.PendingMax = 1024
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	policy := opts.Self.PolicyDigest()
	if opts.PolicyDigest != nil {
		policy = *opts.PolicyDigest
	}
	cert, err := selfSignedCert(opts.Identity, &policy)
	if err != nil {
		return nil, err
	}
	log.Info("cluster policy", "policy_digest", policy.String(), "covers", config.PolicyFields)
	t := &Transport{
		self:      opts.Self.ID,
		policy:    policy,
		opts:      opts,
		log:       log,
		cert:      cert,
		links:     make(map[uint16]*link),
		byKey:     make(map[string]uint16),
		handlers:  make(map[string]Handler),
		sessions:  make(map[round.SessionID]*runner),
		listeners: make(map[net.Listener]struct{}),
		inbound:   make(map[*peerConn]struct{}),
		inboundBy: make(map[uint16][]*peerConn),
		callSlots: make(map[uint16]chan struct{}),
		callBytes: make(map[uint16]*atomic.Int64),
		pending:   make(map[uint16]*peerPending),
		hs:        make(map[netip.Addr][]*handshake),
	}
	own := opts.Identity.PublicKey()
	for _, p := range opts.Self.Peers {
		pub, err := p.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("transport: peer %d: %w", p.ID, err)
		}
		if string(pub) == string(own) {
			return nil, fmt.Errorf("transport: peer %d is configured with this node's own identity key", p.ID)
		}
		t.byKey[string(pub)] = p.ID
		t.callSlots[p.ID] = make(chan struct{}, maxConcurrentCalls)
		t.callBytes[p.ID] = new(atomic.Int64)
		t.pending[p.ID] = &peerPending{perSession: make(map[round.SessionID]int)}
		t.links[p.ID] = &link{t: t, id: p.ID, addr: p.PeerAddr, tls: clientConfig(cert, p.ID, pub), wake: make(chan struct{}, 1)}
	}
	t.pendingPeerBytes = max(pendingMaxBytes/max(len(opts.Self.Peers), 1), maxMessageBytes+pendingOverhead)
	t.server = t.serverConfig(cert)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	for _, l := range t.links {
		t.wg.Add(1)
		go l.maintain()
	}
	return t, nil
}

// Serve accepts peer links on ln until ctx is done or the transport is
// closed, then closes ln and returns nil. It returns ln's error if Accept
// fails for another reason. Serve may be called for several listeners.
func (t *Transport) Serve(ctx context.Context, ln net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	t.listeners[ln] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.listeners, ln)
		t.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("transport: accept: %w", err)
		}
		delay = 0
		h := t.admitHandshake(c)
		if h == nil {
			// Too many handshakes in flight from its address, or in all
			// and none to evict: shed this one.
			t.stats.connsRejected.Add(1)
			c.Close()
			continue
		}
		if !t.track(func() { t.accept(h) }) {
			t.releaseHandshake(h)
			c.Close()
			return nil
		}
	}
}

// track runs f in a goroutine that Close waits for, unless the transport
// is closed: then it runs nothing and reports false. Adding to t.wg under
// t.mu, after the closed check, keeps every Add ordered before Close's
// Wait (an Add racing a Wait that may already have returned is a misuse
// of sync.WaitGroup, which the race detector reports).
func (t *Transport) track(f func()) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// accept runs the TLS handshake of an admitted connection, within
// handshakeTimeout, then reads its frames until it closes.
func (t *Transport) accept(h *handshake) {
	c := h.c
	tc := tls.Server(c, t.server)
	ctx, cancel := context.WithTimeout(t.ctx, min(handshakeTimeout, t.opts.DialTimeout))
	err := tc.HandshakeContext(ctx)
	cancel()
	t.releaseHandshake(h)
	var peer uint16
	if err == nil {
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol != alpn {
			err = fmt.Errorf("transport: peer did not negotiate %q", alpn)
		} else if pub, kerr := peerKey(cs); kerr != nil {
			err = kerr
		} else {
			peer = t.byKey[string(pub)]
		}
	}
	if err == nil && peer != 0 {
		if perr := t.checkPolicy(peer, tc.ConnectionState()); perr != nil {
			// Logged by checkPolicy, once per peer and digest.
			t.stats.connsRejected.Add(1)
			tc.Close()
			return
		}
	}
	if err != nil || peer == 0 {
		t.stats.connsRejected.Add(1)
		t.warnAbuse("peer connection refused", "remote", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	pc := newPeerConn(t, peer, tc, nil)
	old, ok := t.addInbound(pc)
	if !ok {
		tc.Close()
		return
	}
	if old != nil {
		t.stats.connsRejected.Add(1)
		t.warnAbuse("peer opened too many connections; closed its oldest", "peer", peer, "max", maxInboundPerPeer)
		old.close(errTooManyConns)
	}
	t.log.Debug("peer connected", "peer", peer, "remote", c.RemoteAddr().String())
	pc.readLoop()
	t.removeInbound(pc)
}

// Close stops every link, listener and session. Running sessions and calls
// fail with ErrClosed; handler contexts are cancelled (Close does not wait
// for handlers to return).
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	lns := make([]net.Listener, 0, len(t.listeners))
	for ln := range t.listeners {
		lns = append(lns, ln)
	}
	in := make([]*peerConn, 0, len(t.inbound))
	for pc := range t.inbound {
		in = append(in, pc)
	}
	t.mu.Unlock()
	t.cancel()
	for _, ln := range lns {
		ln.Close()
	}
	for _, pc := range in {
		pc.close(ErrClosed)
	}
	for _, l := range t.links {
		if pc := l.current(); pc != nil {
			pc.close(ErrClosed)
		}
	}
	t.wg.Wait()
	return nil
}

// PeerStatus is one peer link as Peers reports it.
type PeerStatus struct {
	ID        uint16
	Addr      string
	Reachable bool      // our link to it is up and answered a ping within PingTimeout
	LastSeen  time.Time // last frame received from it on any connection; zero if never
	LastError string    // last dial or link error, empty if none since the link came up
	// PolicyMismatch: the peer's cluster policy digest differs from this
	// node's (or it presented none), so its links are refused both ways;
	// LastError then says "cluster policy mismatch" and gives both digests.
	PolicyMismatch bool
}

// Peers reports every configured peer, sorted by id. It takes no lock that
// I/O holds, so it is cheap enough for a readiness probe.
func (t *Transport) Peers() []PeerStatus {
	out := make([]PeerStatus, 0, len(t.links))
	for _, l := range t.links {
		out = append(out, l.status())
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return int(a.ID) - int(b.ID) })
	return out
}

// Stats are running totals since New, for metrics.
type Stats struct {
	BytesSent, BytesReceived   uint64
	FramesSent, FramesReceived uint64
	// MessagesDropped counts round messages not used: From not matching
	// the link's peer, undecodable for their session, replays, overflow of
	// the pending buffer or a session's queue, expiry in the pending buffer.
	MessagesDropped   uint64
	SessionsStarted   uint64
	SessionsSucceeded uint64
	SessionsFailed    uint64
	CallsSent         uint64
	CallsServed       uint64
	// CallsBusy counts requests answered "busy": the peer already had
	// maxConcurrentCalls handlers running, or maxCallBytesPerPeer of
	// request bodies in them.
	CallsBusy uint64
	// ConnsRejected counts inbound connections refused or closed by the
	// limits: unknown key, failed or timed-out handshake, too many
	// handshakes (from the address, or evicted for a newer one), and a
	// peer's oldest connection closed when it opened one too many.
	ConnsRejected uint64
}

type counters struct {
	bytesSent, bytesReceived, framesSent, framesReceived, dropped atomic.Uint64
	sessionsStarted, sessionsSucceeded, sessionsFailed            atomic.Uint64
	callsSent, callsServed, callsBusy, connsRejected              atomic.Uint64
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		BytesSent: c.bytesSent.Load(), BytesReceived: c.bytesReceived.Load(),
		FramesSent: c.framesSent.Load(), FramesReceived: c.framesReceived.Load(),
		MessagesDropped: c.dropped.Load(),
		SessionsStarted: c.sessionsStarted.Load(), SessionsSucceeded: c.sessionsSucceeded.Load(), SessionsFailed: c.sessionsFailed.Load(),
		CallsSent: c.callsSent.Load(), CallsServed: c.callsServed.Load(), CallsBusy: c.callsBusy.Load(),
		ConnsRejected: c.connsRejected.Load(),
	}
}
