package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// maxQueue bounds one peer's messages waiting for one running session (its
// bytes are bounded by Transport.pendingPeerBytes), so a party flooding a
// session cannot crowd out the other parties' messages. An honest peer
// sends a handful per round, and the session takes the queue after each.
const maxQueue = 4096

// pendingMsg is a message kept for a session not running here yet.
type pendingMsg struct {
	msg *round.Message
	at  time.Time
	seq uint64 // arrival order over all peers
}

func pendingSize(m *round.Message) int { return len(m.Payload) + len(m.Echo) + pendingOverhead }

// peerPending is one peer's messages for sessions not running here yet, in
// arrival order: msgs[head:] are kept. Its quotas are the peer's alone
// (Options.PendingMax messages, Transport.pendingPeerBytes bytes,
// pendingPerSession per session), so another peer's flood never evicts
// them. Guarded by Transport.mu.
type peerPending struct {
	msgs       []pendingMsg
	head       int
	bytes      int
	perSession map[round.SessionID]int
}

func (q *peerPending) len() int { return len(q.msgs) - q.head }

// forget updates the counts for p, which has left the buffer.
func (q *peerPending) forget(p pendingMsg) {
	q.bytes -= pendingSize(p.msg)
	if n := q.perSession[p.msg.SessionID] - 1; n > 0 {
		q.perSession[p.msg.SessionID] = n
	} else {
		delete(q.perSession, p.msg.SessionID)
	}
}

// popOldest removes the oldest message. Amortised O(1): the kept tail is
// moved down only once the dropped head is as long as it.
func (q *peerPending) popOldest() {
	q.forget(q.msgs[q.head])
	q.msgs[q.head] = pendingMsg{}
	q.head++
	switch {
	case q.head == len(q.msgs):
		q.msgs, q.head = q.msgs[:0], 0
	case q.head >= 64 && 2*q.head >= len(q.msgs):
		n := copy(q.msgs, q.msgs[q.head:])
		clear(q.msgs[n:])
		q.msgs, q.head = q.msgs[:n], 0
	}
}

// take removes and returns the messages for sid, in arrival order.
func (q *peerPending) take(sid round.SessionID) []pendingMsg {
	if q.perSession[sid] == 0 {
		return nil
	}
	var out []pendingMsg
	kept := q.msgs[q.head:q.head]
	for _, p := range q.msgs[q.head:] {
		if p.msg.SessionID == sid {
			out = append(out, p)
			q.forget(p)
		} else {
			kept = append(kept, p)
		}
	}
	end := q.head + len(kept)
	clear(q.msgs[end:])
	q.msgs = q.msgs[:end]
	return out
}

// runner is the inbox of one running session.
type runner struct {
	peers    []round.PartyID
	maxBytes int // per peer in the queue: Transport.pendingPeerBytes
	wake     chan struct{}

	mu     sync.Mutex
	queue  []*round.Message
	queued map[round.PartyID]queued // per sender, since the last take
	down   map[round.PartyID]error
}

type queued struct{ n, bytes int }

func (r *runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// push queues m unless its sender is not a party of the session or is over
// its share of the queue (maxQueue messages, maxBytes bytes).
func (r *runner) push(m *round.Message) bool {
	if !slices.Contains(r.peers, m.From) {
		return false
	}
	size := pendingSize(m)
	r.mu.Lock()
	q := r.queued[m.From]
	if q.n >= maxQueue || q.bytes+size > r.maxBytes {
		r.mu.Unlock()
		return false
	}
	if r.queued == nil {
		r.queued = make(map[round.PartyID]queued, len(r.peers))
	}
	r.queued[m.From] = queued{q.n + 1, q.bytes + size}
	r.queue = append(r.queue, m)
	r.mu.Unlock()
	r.notify()
	return true
}

func (r *runner) take() ([]*round.Message, map[round.PartyID]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue
	r.queue = nil
	clear(r.queued)
	down := make(map[round.PartyID]error, len(r.down))
	for p, err := range r.down {
		down[p] = err
	}
	return q, down
}

// deliver routes a message from an authenticated peer to its session, or
// buffers it if the session is not running here yet.
func (t *Transport) deliver(m *round.Message) {
	t.mu.Lock()
	r := t.sessions[m.SessionID]
	if r == nil {
		t.bufferLocked(m)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	if !r.push(m) {
		t.stats.dropped.Add(1)
	}
}

// bufferLocked keeps m, from an authenticated peer, for PendingTTL. It
// first drops the peer's expired messages; a message over the peer's
// pendingPerSession for its session is dropped, and a peer over its
// PendingMax messages or pendingPeerBytes loses its own oldest messages.
func (t *Transport) bufferLocked(m *round.Message) {
	q := t.pending[uint16(m.From)]
	if q == nil { // not a configured peer: readLoop never delivers one
		t.stats.dropped.Add(1)
		return
	}
	now := time.Now()
	drop := 0
	for q.len() > 0 && now.Sub(q.msgs[q.head].at) >= t.opts.PendingTTL {
		q.popOldest()
		drop++
	}
	if q.perSession[m.SessionID] >= pendingPerSession {
		t.stats.dropped.Add(uint64(drop + 1))
		return
	}
	t.pendSeq++
	q.msgs = append(q.msgs, pendingMsg{msg: m, at: now, seq: t.pendSeq})
	q.bytes += pendingSize(m)
	q.perSession[m.SessionID]++
	for q.len() > t.opts.PendingMax || q.bytes > t.pendingPeerBytes {
		q.popOldest()
		drop++
	}
	if drop > 0 {
		t.stats.dropped.Add(uint64(drop))
	}
}

// takePendingLocked removes and returns the unexpired messages buffered
// for sid, in arrival order over all peers.
func (t *Transport) takePendingLocked(sid round.SessionID) []*round.Message {
	var all []pendingMsg
	for _, q := range t.pending {
		all = append(all, q.take(sid)...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b pendingMsg) int { return cmp.Compare(a.seq, b.seq) })
	now := time.Now()
	out := make([]*round.Message, 0, len(all))
	for _, p := range all {
		if now.Sub(p.at) < t.opts.PendingTTL {
			out = append(out, p.msg)
		} else {
			t.stats.dropped.Add(1)
		}
	}
	return out
}

// peerDown tells every running session that includes peer that its link
// broke.
func (t *Transport) peerDown(peer uint16, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.sessions {
		if !slices.Contains(r.peers, round.PartyID(peer)) {
			continue
		}
		r.mu.Lock()
		if r.down == nil {
			r.down = make(map[round.PartyID]error)
		}
		r.down[round.PartyID(peer)] = err
		r.mu.Unlock()
		r.notify()
	}
}

// RunSession runs s, whose Self must be this node and whose parties must
// all be configured peers, until it finishes, and returns its result.
//
// Messages that arrived for s's session ID before RunSession was called are
// replayed into it. The run fails with an error wrapping
//   - *PeerDownError, at once, if a peer s still needs cannot be reached or
//     its link breaks;
//   - *TimeoutError naming the parties it waits for, after SessionTimeout
//     (or at ctx's deadline, if earlier);
//   - the session's own error (a *round.AbortError naming culprits) if the
//     protocol aborts;
//   - ctx.Err() or ErrClosed.
//
// On failure s is ended with s.Fail. When s aborts, the messages it produced
// in the same step are not sent: a run that blamed someone goes no further,
// and the other parties learn of it from their own checks or their timeout.
// One session ID may run only once at a time.
func (t *Transport) RunSession(ctx context.Context, s *round.Session) (any, error) {
	sid := s.ID()
	res, err := t.runSession(ctx, s)
	if err != nil {
		s.Fail(err)
		t.stats.sessionsFailed.Add(1)
		return nil, fmt.Errorf("transport: session %x: %w", sid[:6], err)
	}
	t.stats.sessionsSucceeded.Add(1)
	return res, nil
}

func (t *Transport) runSession(ctx context.Context, s *round.Session) (any, error) {
	if uint16(s.Self()) != t.self {
		return nil, fmt.Errorf("session is for %v, this node is %d", s.Self(), t.self)
	}
	var peers []round.PartyID
	for _, p := range s.Parties() {
		if p == s.Self() {
			continue
		}
		if t.links[uint16(p)] == nil {
			return nil, fmt.Errorf("%v is not a configured peer", p)
		}
		peers = append(peers, p)
	}
	r := &runner{peers: peers, maxBytes: t.pendingPeerBytes, wake: make(chan struct{}, 1)}
	sid := s.ID()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if t.sessions[sid] != nil {
		t.mu.Unlock()
		return nil, errors.New("a session with this ID is already running")
	}
	t.sessions[sid] = r
	r.queue = t.takePendingLocked(sid)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.sessions, sid)
		t.mu.Unlock()
	}()
	t.stats.sessionsStarted.Add(1)

	start := time.Now()
	timer := time.NewTimer(t.opts.SessionTimeout)
	defer timer.Stop()

	// Fail fast: every peer must be reachable before we start.
	for _, p := range peers {
		if _, err := t.links[uint16(p)].get(ctx); err != nil {
			return nil, err
		}
	}
	out, err := step(ctx, s.Start)
	if err != nil {
		return nil, err
	}
	if err := t.sendAll(ctx, peers, out); err != nil {
		return nil, err
	}
	r.notify() // replay buffered messages
	for !s.Done() {
		select {
		case <-r.wake:
		case <-timer.C:
			return nil, &TimeoutError{Round: s.Round(), Waiting: ids(s.Waiting()), After: time.Since(start)}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &TimeoutError{Round: s.Round(), Waiting: ids(s.Waiting()), After: time.Since(start)}
			}
			return nil, ctx.Err()
		case <-t.ctx.Done():
			return nil, ErrClosed
		}
		msgs, down := r.take()
		for _, m := range msgs {
			out, err := step(ctx, func() ([]*round.Message, error) { return s.Handle(m) })
			if errors.Is(err, round.ErrDropped) {
				t.stats.dropped.Add(1)
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := t.sendAll(ctx, peers, out); err != nil {
				return nil, err
			}
			if s.Done() {
				break
			}
		}
		if s.Done() {
			break
		}
		for _, p := range s.Waiting() {
			if err, ok := down[p]; ok {
				return nil, err
			}
		}
	}
	return s.Result()
}

// sendAll sends each message to its recipient, or to every peer of the
// session for a broadcast. The first failure is returned as *PeerDownError.
func (t *Transport) sendAll(ctx context.Context, peers []round.PartyID, msgs []*round.Message) error {
	for _, m := range msgs {
		to := peers
		if !m.IsBroadcast() {
			to = []round.PartyID{m.To}
		}
		var enc []byte
		for _, p := range to {
			if enc == nil || t.testingOnlyAlterOutgoing != nil {
				mm := m
				if t.testingOnlyAlterOutgoing != nil {
					c := *m
					c.Echo, c.Payload = slices.Clone(m.Echo), slices.Clone(m.Payload)
					t.testingOnlyAlterOutgoing(uint16(p), &c)
					mm = &c
				}
				b, err := appendFrame(nil, &frame{typ: frameMsg, msg: mm})
				if err != nil {
					return err
				}
				enc = b
			}
			l := t.links[uint16(p)]
			pc, err := l.get(ctx)
			if err != nil {
				return err
			}
			if err := pc.writeFrame(enc); err != nil {
				return &PeerDownError{Peer: uint16(p), Err: err}
			}
		}
	}
	return nil
}

func ids(ps []round.PartyID) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = uint16(p)
	}
	return out
}
