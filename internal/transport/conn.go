package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeTimeout bounds one frame write; a peer that does not read for this
// long is treated as down.
const writeTimeout = 10 * time.Second

// fastFailWindow: for this long after a dial failed or a link broke, a
// session or call that needs the peer fails at once instead of redialling
// (the link's own loop keeps redialling with backoff), unless a frame from
// the peer arrived since.
const fastFailWindow = 500 * time.Millisecond

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// readBufSize is each connection's read buffer. With frameChunk it is what
// an idle or stalled connection holds (see maxInboundPerPeer).
const readBufSize = 64 << 10

// peerConn is one authenticated TLS connection to a peer, either direction.
type peerConn struct {
	t    *Transport
	peer uint16
	conn *tls.Conn
	link *link // the outbound link this connection serves, nil for inbound

	wmu sync.Mutex

	mu     sync.Mutex
	calls  map[uint64]chan *frame
	nextID uint64
	err    error
	done   chan struct{}
}

func newPeerConn(t *Transport, peer uint16, c *tls.Conn, l *link) *peerConn {
	return &peerConn{
		t: t, peer: peer, conn: c, link: l,
		calls: make(map[uint64]chan *frame),
		done:  make(chan struct{}),
	}
}

// writeFrame sends one encoded frame. A failed write closes the connection.
func (pc *peerConn) writeFrame(b []byte) error {
	select {
	case <-pc.done:
		return pc.closeErr()
	default:
	}
	pc.wmu.Lock()
	pc.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := pc.conn.Write(b)
	pc.wmu.Unlock()
	if err != nil {
		pc.close(err)
		return err
	}
	pc.t.stats.bytesSent.Add(uint64(len(b)))
	pc.t.stats.framesSent.Add(1)
	return nil
}

func (pc *peerConn) send(f *frame) error {
	b, err := appendFrame(nil, f)
	if err != nil {
		return err
	}
	return pc.writeFrame(b)
}

func (pc *peerConn) closeErr() error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.err
}

// close shuts the connection once, fails its pending calls and, for an
// outbound link, marks the peer down.
func (pc *peerConn) close(err error) {
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	pc.err = err
	close(pc.done)
	pc.calls = nil
	pc.mu.Unlock()
	pc.conn.Close()
	if pc.link != nil {
		pc.link.lost(pc, err)
	}
}

// readLoop reads frames until the connection fails, then closes it.
func (pc *peerConn) readLoop() {
	br := bufio.NewReaderSize(pc.conn, readBufSize)
	for {
		pc.conn.SetReadDeadline(time.Now().Add(pc.t.opts.PingTimeout))
		f, n, err := readFrame(br)
		pc.t.stats.bytesReceived.Add(uint64(n))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("nothing received for %v", pc.t.opts.PingTimeout)
			}
			pc.close(err)
			return
		}
		pc.t.stats.framesReceived.Add(1)
		if l := pc.t.links[pc.peer]; l != nil {
			l.lastSeen.Store(time.Now().UnixNano())
		}
		pc.handle(f)
	}
}

func (pc *peerConn) handle(f *frame) {
	t := pc.t
	switch f.typ {
	case frameMsg:
		if uint16(f.msg.From) != pc.peer {
			t.stats.dropped.Add(1)
			t.log.Warn("dropped a round message whose sender is not the link's peer", "peer", pc.peer, "from", uint16(f.msg.From))
			return
		}
		t.deliver(f.msg)
	case frameRequest:
		// The slots and the byte budget are the peer's, over all its
		// connections (a MaxBody request alone always fits the budget).
		slots, held, size := t.callSlots[pc.peer], t.callBytes[pc.peer], int64(len(f.body))
		select {
		case slots <- struct{}{}:
			if n := held.Add(size); n > maxCallBytesPerPeer {
				held.Add(-size)
				<-slots
				break
			}
			go func() {
				defer func() { held.Add(-size); <-slots }()
				t.serveCall(pc, f)
			}()
			return
		default:
		}
		t.stats.callsBusy.Add(1)
		pc.send(&frame{typ: frameResponse, id: f.id, body: []byte("busy")})
	case frameResponse:
		pc.mu.Lock()
		ch := pc.calls[f.id]
		delete(pc.calls, f.id)
		pc.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	case framePing:
		pc.send(&frame{typ: framePong, id: f.id})
	case framePong:
		// lastSeen is all a pong is for.
	}
}

// call registers a pending call and returns its id and answer channel.
func (pc *peerConn) call() (uint64, chan *frame, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.err != nil {
		return 0, nil, pc.err
	}
	pc.nextID++
	ch := make(chan *frame, 1)
	pc.calls[pc.nextID] = ch
	return pc.nextID, ch, nil
}

func (pc *peerConn) forget(id uint64) {
	pc.mu.Lock()
	delete(pc.calls, id)
	pc.mu.Unlock()
}

// link is our outbound connection to one peer and the loop that keeps it up.
type link struct {
	t    *Transport
	id   uint16
	addr string
	tls  *tls.Config
	wake chan struct{}

	dialMu sync.Mutex // one dial at a time

	mu       sync.Mutex
	pc       *peerConn // nil while down
	lastErr  error
	failedAt time.Time

	lastSeen atomic.Int64 // unix nanoseconds

	// policy is set while the peer's policy digest differs from ours
	// (checkPolicy), on a connection either way.
	policy atomic.Pointer[PolicyMismatchError]
}

func (l *link) current() *peerConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pc
}

func (l *link) status() PeerStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := PeerStatus{ID: l.id, Addr: l.addr, Reachable: l.pc != nil}
	if l.lastErr != nil {
		s.LastError = l.lastErr.Error()
	}
	if e := l.policy.Load(); e != nil {
		s.PolicyMismatch, s.LastError = true, e.Error()
	}
	if ns := l.lastSeen.Load(); ns != 0 {
		s.LastSeen = time.Unix(0, ns)
	}
	return s
}

// get returns the live connection, dialling if there is none. Within
// fastFailWindow of a failure it returns that failure without dialling.
// Errors are *PeerDownError.
func (l *link) get(ctx context.Context) (*peerConn, error) {
	l.mu.Lock()
	pc, lastErr, failedAt := l.pc, l.lastErr, l.failedAt
	l.mu.Unlock()
	if pc != nil {
		return pc, nil
	}
	// Fail fast after a failure, unless the peer has spoken since (on a
	// connection it dialled, e.g. a restarted gateway inviting this node
	// to a session): then it is up, and waiting out the window would
	// refuse its own invitation.
	if lastErr != nil && time.Since(failedAt) < fastFailWindow && l.lastSeen.Load() < failedAt.UnixNano() {
		return nil, &PeerDownError{Peer: l.id, Err: lastErr}
	}
	return l.connect(ctx)
}

// connect dials unless another dial just succeeded.
func (l *link) connect(ctx context.Context) (*peerConn, error) {
	l.dialMu.Lock()
	defer l.dialMu.Unlock()
	if pc := l.current(); pc != nil {
		return pc, nil
	}
	if err := l.t.ctx.Err(); err != nil {
		return nil, ErrClosed
	}
	pc, err := l.dial(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.lastErr, l.failedAt = err, time.Now()
		return nil, &PeerDownError{Peer: l.id, Err: err}
	}
	if l.t.ctx.Err() != nil {
		pc.conn.Close()
		return nil, ErrClosed
	}
	if !l.t.track(pc.readLoop) {
		pc.conn.Close()
		return nil, ErrClosed
	}
	l.pc, l.lastErr = pc, nil
	l.t.log.Info("peer link up", "peer", l.id, "addr", l.addr)
	return pc, nil
}

// dial connects, runs the TLS handshake and waits for the answer to one
// ping: in TLS 1.3 the client finishes its handshake before the server has
// checked the client's certificate, and the pong shows it was accepted.
func (l *link) dial(ctx context.Context) (*peerConn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.t.opts.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, l.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != alpn {
		c.Close()
		return nil, fmt.Errorf("peer did not negotiate %q", alpn)
	}
	if err := l.t.checkPolicy(l.id, tc.ConnectionState()); err != nil {
		c.Close()
		return nil, err
	}
	var nb [8]byte
	rand.Read(nb[:])
	nonce := binary.BigEndian.Uint64(nb[:])
	deadline, _ := ctx.Deadline()
	tc.SetDeadline(deadline)
	b, _ := appendFrame(nil, &frame{typ: framePing, id: nonce})
	if _, err := tc.Write(b); err != nil {
		c.Close()
		return nil, err
	}
	f, _, err := readFrame(tc)
	if err != nil {
		c.Close()
		return nil, err
	}
	if f.typ != framePong || f.id != nonce {
		c.Close()
		return nil, errors.New("peer did not answer the first ping")
	}
	tc.SetDeadline(time.Time{})
	l.lastSeen.Store(time.Now().UnixNano())
	return newPeerConn(l.t, l.id, tc, l), nil
}

// lost records that pc broke and tells the sessions that need the peer.
func (l *link) lost(pc *peerConn, err error) {
	l.mu.Lock()
	if l.pc != pc {
		l.mu.Unlock()
		return
	}
	l.pc, l.lastErr, l.failedAt = nil, err, time.Now()
	l.mu.Unlock()
	if !errors.Is(err, ErrClosed) {
		l.t.log.Warn("peer link down", "peer", l.id, "err", err)
	}
	l.t.peerDown(l.id, &PeerDownError{Peer: l.id, Err: err})
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// maintain keeps the link up: it pings a live link every PingInterval and
// redials a dead one with exponential backoff.
func (l *link) maintain() {
	defer l.t.wg.Done()
	backoff := minBackoff
	wait := time.Duration(0)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-l.t.ctx.Done():
			return
		case <-timer.C:
		case <-l.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if pc := l.current(); pc != nil {
			var nb [8]byte
			rand.Read(nb[:])
			pc.send(&frame{typ: framePing, id: binary.BigEndian.Uint64(nb[:])})
			backoff = minBackoff
			timer.Reset(l.t.opts.PingInterval)
			continue
		}
		if _, err := l.connect(l.t.ctx); err != nil {
			timer.Reset(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		timer.Reset(l.t.opts.PingInterval)
	}
}
