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
// times out. A node aborts only a run the caller invited; an abort that
// arrives before its invitation is remembered for abortMemory (at most
// maxAbortsPerPeer per peer), and the invitation is then refused.
const (
	abortMemory      = time.Minute
	maxAbortsPerPeer = 256
)

type runKey struct {
	from  uint16
	nonce [32]byte
}

type runs struct {
	mu     sync.Mutex
	cancel map[runKey]context.CancelFunc
	early  map[runKey]time.Time
	byPeer map[uint16]int
}

// errAborted refuses an invitation its gateway aborted already.
var errAborted = errors.New("uid: the inviting node aborted this key generation")

// track registers the run of from's invitation with nonce, under cancel;
// errAborted if its abort came first. untrack must be called when the run
// ends.
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
		r.cancel = map[runKey]context.CancelFunc{}
	}
	r.cancel[k] = cancel
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.cancel, k)
	}, nil
}

// abort cancels from's run of nonce, or remembers the abort for a run not
// tracked yet.
func (r *runs) abort(from uint16, nonce [32]byte, now time.Time) {
	k := runKey{from, nonce}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cancel[k]; ok {
		c()
		return
	}
	if r.early == nil {
		r.early, r.byPeer = map[runKey]time.Time{}, map[uint16]int{}
	}
	if _, ok := r.early[k]; ok {
		return
	}
	if r.byPeer[from] >= maxAbortsPerPeer {
		for x, t := range r.early {
			if x.from == from && now.Sub(t) > abortMemory {
				delete(r.early, x)
				r.byPeer[from]--
			}
		}
		if r.byPeer[from] >= maxAbortsPerPeer {
			return // the peer aborts faster than it invites: its loss
		}
	}
	r.early[k] = now
	r.byPeer[from]++
}

// handleAbort is api.PeerUIDAbort's handler: the body is exactly the
// invitation's 32-byte nonce.
func (s *Service) handleAbort(_ context.Context, from uint16, body []byte) ([]byte, error) {
	if len(body) != 32 {
		return nil, api.ErrUIDBody
	}
	var nonce [32]byte
	copy(nonce[:], body)
	s.runs.abort(from, nonce, time.Now())
	return nil, nil
}

// abortPeers tells peers, in the background, that the run of nonce is
// abandoned. Best effort: a peer that does not hear it times out.
func (s *Service) abortPeers(peers []uint16, nonce [32]byte) {
	for _, id := range peers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := s.tr.Call(ctx, id, api.PeerUIDAbort, nonce[:]); err != nil {
				s.log.Debug("uid: abort a key generation at a peer", "peer", id, "err", err)
			}
		}()
	}
}
