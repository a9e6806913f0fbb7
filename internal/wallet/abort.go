package wallet

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// kindAbort is the peer RPC kind a gateway sends to the nodes it invited
// to a session it gave up (a peer refused, busy or not; its own session
// failed): they stop waiting for it at once and free their slot
// (schedule.go), instead of holding it until their session times out. A
// key generation needs all n nodes, so without it one busy node would
// keep the others' slots for a whole KeygenTimeout.
//
// The body is the invitation's nonce (nonceLen bytes, nothing else). A
// node aborts only a session the caller itself invited: a peer can end its
// own invitations, never another gateway's. An abort that arrives before
// its invitation is remembered for abortMemory, so the invitation is then
// refused.
const kindAbort = "wallet/abort/v1"

const (
	abortMemory = time.Minute
	// maxAbortsPerPeer bounds the remembered early aborts of one peer.
	maxAbortsPerPeer = 1024
)

type runKey struct {
	from  uint16
	nonce [nonceLen]byte
}

// runs are the sessions this node runs on peers' invitations, by inviting
// node and nonce, and the aborts that came first.
type runs struct {
	mu     sync.Mutex
	cancel map[runKey]context.CancelFunc
	early  map[runKey]time.Time
	byPeer map[uint16]int // early aborts held per peer
}

// errAborted refuses an invitation its gateway already aborted.
var errAborted = fmt.Errorf("wallet: the inviting node aborted this session")

// track registers the session of from's invitation with nonce, run under
// cancel. It returns errAborted if the abort came first. untrack must be
// called when the session ends.
func (s *Service) track(from uint16, nonce [nonceLen]byte, cancel context.CancelFunc) (untrack func(), err error) {
	k := runKey{from, nonce}
	r := &s.runs
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
		delete(r.cancel, k)
		r.mu.Unlock()
	}, nil
}

// handleAbort is kindAbort's handler.
func (s *Service) handleAbort(_ context.Context, from uint16, body []byte) ([]byte, error) {
	if len(body) != nonceLen {
		return nil, errMalformed
	}
	k := runKey{from: from}
	copy(k.nonce[:], body)
	r := &s.runs
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cancel[k]; ok {
		c()
		s.stats.Aborted.Add(1)
		return nil, nil
	}
	// Not running (yet): remember it, within the peer's share.
	now := time.Now()
	if r.early == nil {
		r.early, r.byPeer = map[runKey]time.Time{}, map[uint16]int{}
	}
	if r.byPeer[from] >= maxAbortsPerPeer {
		for x, t := range r.early {
			if x.from == from && now.Sub(t) > abortMemory {
				delete(r.early, x)
				r.byPeer[from]--
			}
		}
		if r.byPeer[from] >= maxAbortsPerPeer {
			return nil, nil // the peer aborts faster than it invites: its loss
		}
	}
	if _, ok := r.early[k]; !ok {
		r.early[k] = now
		r.byPeer[from]++
	}
	return nil, nil
}

// abortPeers tells peers, in the background, that the session of nonce is
// abandoned. Best effort: a peer that does not hear it times out.
func (s *Service) abortPeers(peers []uint16, nonce [nonceLen]byte) {
	for _, id := range peers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := s.tr.Call(ctx, id, kindAbort, nonce[:]); err != nil {
				s.log.Debug("abort a session at a peer", "peer", id, "err", err)
			}
		}()
	}
}
