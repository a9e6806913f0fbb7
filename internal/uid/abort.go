package uid

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
)

// Aborts (api.PeerUIDAbort), as the wallet's: a key generation needs all
// n nodes, so when one refuses, the gateway tells the others to stop
// waiting for it at once instead of holding the scope until their run
// times out. A node aborts only a run the caller invited, and answers once
// that run has ended and freed the scope (at most abortWait later), so that
// the gateway tells its client of the failure only when a retry can run;
// an abort that arrives before its invitation is remembered for
// abortMemory (at most maxAbortsPerPeer per peer), and the invitation is
// then refused.
const (
	abortMemory      = time.Minute
	maxAbortsPerPeer = 256
	abortWait        = 2 * time.Second
)

type runKey struct {
	from  uint16
	nonce [32]byte
}

type runs struct {
	mu     sync.Mutex
	cancel map[runKey]tracked
	early  map[runKey]time.Time
	byPeer map[uint16]int
}

// tracked is a running key generation: how to stop it, and closed when it
// has ended (its scope freed).
type tracked struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// errAborted refuses an invitation its gateway aborted already.
var errAborted = errors.New("uid: the inviting node aborted this key generation")

// track registers the run of from's invitation with nonce, under cancel;
// errAborted if its abort came first. untrack must be called when the run
// has ended and freed its scope.
func (r *runs) track(from uint16, nonce [32]byte, cancel context.CancelFunc) (untrack func(), err error) {
	k := runKey{from, nonce}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.early[k]; ok {
		delete(r.early, k)
		r.byPeer[from]--
		return nil, errAborted
	}
	if r.cancel == nil {
		r.cancel = map[runKey]tracked{}
	}
	run := tracked{cancel: cancel, done: make(chan struct{})}
	r.cancel[k] = run
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.cancel, k)
			r.mu.Unlock()
			close(run.done)
		})
	}, nil
}

// abort cancels from's run of nonce and returns a channel closed when it
// has ended, or remembers the abort for a run not tracked yet (nil).
func (r *runs) abort(from uint16, nonce [32]byte, now time.Time) <-chan struct{} {
	k := runKey{from, nonce}
	r.mu.Lock()
	defer r.mu.Unlock()
	if run, ok := r.cancel[k]; ok {
		run.cancel()
		return run.done
	}
	if r.early == nil {
		r.early, r.byPeer = map[runKey]time.Time{}, map[uint16]int{}
	}
	if _, ok := r.early[k]; ok {
		return nil
	}
	if r.byPeer[from] >= maxAbortsPerPeer {
		for x, t := range r.early {
			if x.from == from && now.Sub(t) > abortMemory {
				delete(r.early, x)
				r.byPeer[from]--
			}
		}
		if r.byPeer[from] >= maxAbortsPerPeer {
			return nil // the peer aborts faster than it invites: its loss
		}
	}
	r.early[k] = now
	r.byPeer[from]++
	return nil
}

// handleAbort is api.PeerUIDAbort's handler: the body is exactly the
// invitation's 32-byte nonce. It answers once the run has ended (at most
// abortWait).
func (s *Service) handleAbort(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	if len(body) != 32 {
		return nil, api.ErrUIDBody
	}
	var nonce [32]byte
	copy(nonce[:], body)
	if done := s.runs.abort(from, nonce, time.Now()); done != nil {
		t := time.NewTimer(abortWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return nil, nil
}

// abortPeers tells peers that the run of nonce is abandoned and waits
// (in parallel, at most abortWait and a little more each) until they say
// their run ended. Best effort: a peer that does not hear it times out.
func (s *Service) abortPeers(peers []uint16, nonce [32]byte) {
	var wg sync.WaitGroup
	for _, id := range peers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), abortWait+500*time.Millisecond)
			defer cancel()
			if _, err := s.tr.Call(ctx, id, api.PeerUIDAbort, nonce[:]); err != nil {
				s.log.Debug("uid: abort a key generation at a peer", "peer", id, "err", err)
			}
		})
	}
	wg.Wait()
}
