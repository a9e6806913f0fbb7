package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// maxQueue bounds the messages waiting for one running session. An honest
// peer sends a handful per round.
const maxQueue = 4096

// pendingPerSession bounds the buffered messages for one unknown session.
const pendingPerSession = 64

// pendingMaxBytes bounds the payload bytes buffered for unknown sessions.
const pendingMaxBytes = 64 << 20

type pendingMsg struct {
	msg *round.Message
	at  time.Time
}

// runner is the inbox of one running session.
type runner struct {
	peers []round.PartyID
	wake  chan struct{}

	mu    sync.Mutex
	queue []*round.Message
	down  map[round.PartyID]error
}

func (r *runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) push(m *round.Message) bool {
	r.mu.Lock()
	if len(r.queue) >= maxQueue {
		r.mu.Unlock()
		return false
	}
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

// bufferLocked keeps m for PendingTTL, evicting expired and then oldest
// messages to stay within PendingMax and pendingMaxBytes.
func (t *Transport) bufferLocked(m *round.Message) {
	now := time.Now()
	n := 0
	for _, p := range t.pending {
		if p.msg.SessionID == m.SessionID {
			n++
		}
	}
	if n >= pendingPerSession {
		t.stats.dropped.Add(1)
		return
	}
	t.pending = append(t.pending, pendingMsg{msg: m, at: now})
	t.pendBytes += len(m.Payload) + len(m.Echo)
	drop := 0
	for drop < len(t.pending) {
		p := t.pending[drop]
		if now.Sub(p.at) < t.opts.PendingTTL && len(t.pending)-drop <= t.opts.PendingMax && t.pendBytes <= pendingMaxBytes {
			break
		}
		t.pendBytes -= len(p.msg.Payload) + len(p.msg.Echo)
		drop++
	}
	if drop > 0 {
		t.stats.dropped.Add(uint64(drop))
		t.pending = slices.Delete(t.pending, 0, drop)
	}
}

// takePendingLocked removes and returns the unexpired messages buffered
// for sid, in arrival order.
func (t *Transport) takePendingLocked(sid round.SessionID) []*round.Message {
	now := time.Now()
	var out []*round.Message
	t.pending = slices.DeleteFunc(t.pending, func(p pendingMsg) bool {
		if p.msg.SessionID != sid {
			return false
		}
		t.pendBytes -= len(p.msg.Payload) + len(p.msg.Echo)
		if now.Sub(p.at) < t.opts.PendingTTL {
			out = append(out, p.msg)
		} else {
			t.stats.dropped.Add(1)
		}
		return true
	})
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
	r := &runner{peers: peers, wake: make(chan struct{}, 1)}
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
	out, err := s.Start()
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
			out, err := s.Handle(m)
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
