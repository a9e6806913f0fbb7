// Package abort keeps the sessions a node runs on its peers' invitations
// (a key generation, a signing session), so that the peer that invited one
// and then gave it up can stop it at once, instead of leaving this node to
// hold its slot or its scope until the session times out. A key generation
// needs all n nodes: without it, one node refusing would keep the others
// busy for a whole timeout.
//
// A session is known by its inviting node and the invitation's nonce. Only
// that node can abort it: a peer ends its own invitations, never another
// gateway's. An abort that arrives before its invitation (the two travel
// separately) is remembered for Memory, and the invitation is then
// refused; each peer's remembered aborts are bounded (MaxEarly), so a peer
// cannot fill the table.
//
// The wallet's and the identity service's invitations use it; each keeps
// its own peer RPC kind for the abort.
package abort

import (
	"context"
	"errors"
	"sync"
	"time"
)

const (
	// Memory is how long an abort that came before its invitation is
	// remembered.
	Memory = time.Minute
	// MaxEarly bounds the remembered early aborts of one peer.
	MaxEarly = 1024
)

// ErrAborted refuses an invitation that its inviting node aborted already.
var ErrAborted = errors.New("the inviting node aborted this session")

type key struct {
	from  uint16
	nonce [32]byte
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Table is one node's sessions run on invitations, and the aborts that
// came first. The zero Table is ready to use; its methods are safe for
// concurrent use.
type Table struct {
	mu     sync.Mutex
	runs   map[key]run
	early  map[key]time.Time
	byPeer map[uint16]int // early aborts remembered per peer
}

// Track registers the session of from's invitation with nonce, run under
// cancel. It returns ErrAborted if the abort came first. untrack must be
// called when the session has ended (and freed what an abort's caller
// waits for); calling it again does nothing.
func (t *Table) Track(from uint16, nonce [32]byte, cancel context.CancelFunc) (untrack func(), err error) {
	k := key{from, nonce}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.early[k]; ok {
		delete(t.early, k)
		t.byPeer[from]--
		return nil, ErrAborted
	}
	if t.runs == nil {
		t.runs = map[key]run{}
	}
	r := run{cancel: cancel, done: make(chan struct{})}
	t.runs[k] = r
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.runs, k)
			t.mu.Unlock()
			close(r.done)
		})
	}, nil
}

// Abort handles from's abort of its invitation with nonce at now: it
// cancels the session if it runs and returns a channel closed once the
// session has ended (its untrack), or remembers the abort for an
// invitation not seen yet and returns nil.
func (t *Table) Abort(from uint16, nonce [32]byte, now time.Time) <-chan struct{} {
	k := key{from, nonce}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.runs[k]; ok {
		r.cancel()
		return r.done
	}
	if t.early == nil {
		t.early, t.byPeer = map[key]time.Time{}, map[uint16]int{}
	}
	if _, ok := t.early[k]; ok {
		return nil
	}
	if t.byPeer[from] >= MaxEarly {
		for x, at := range t.early {
			if x.from == from && now.Sub(at) > Memory {
				delete(t.early, x)
				t.byPeer[from]--
			}
		}
		if t.byPeer[from] >= MaxEarly {
			return nil // the peer aborts faster than it invites: its loss
		}
	}
	t.early[k] = now
	t.byPeer[from]++
	return nil
}

// Early returns how many early aborts of from are remembered.
func (t *Table) Early(from uint16) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPeer[from]
}
