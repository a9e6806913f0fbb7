package uid

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/abort"
)

// Aborts (api.PeerUIDAbort), as the wallet's: a key generation needs all
// n nodes, so when one refuses, the gateway tells the others to stop
// waiting for it at once instead of holding the scope until their run
// times out. A node aborts only a run the caller invited, and answers once
// that run has ended and freed the scope (at most abortWait later), so that
// the gateway tells its client of the failure only when a retry can run;
// an abort that arrives before its invitation is remembered (package
// abort, which the wallet's invitations use too), and the invitation is
// then refused.
// abortWait bounds how long an abort waits for its run to end.
const abortWait = 2 * time.Second

// errAborted refuses an invitation its gateway aborted already.
var errAborted = errors.New("uid: the inviting node aborted this key generation")

// track registers the run of from's invitation with nonce, under cancel
// (package abort); errAborted if its abort came first. untrack must be
// called when the run has ended and freed its scope.
func (s *Service) track(from uint16, nonce [32]byte, cancel context.CancelFunc) (untrack func(), err error) {
	untrack, err = s.runs.Track(from, nonce, cancel)
	if errors.Is(err, abort.ErrAborted) {
		return nil, errAborted
	}
	return untrack, err
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
	if done := s.runs.Abort(from, nonce, time.Now()); done != nil {
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
