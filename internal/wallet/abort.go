package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/abort"
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
// its invitation is remembered (abort.Memory), so the invitation is then
// refused.
const kindAbort = "wallet/abort/v1"

// errAborted refuses an invitation its gateway already aborted.
var errAborted = fmt.Errorf("wallet: the inviting node aborted this session")

// track registers the session of from's invitation with nonce, run under
// cancel (package abort). It returns errAborted if the abort came first.
// untrack must be called when the session ends.
func (s *Service) track(from uint16, nonce [nonceLen]byte, cancel context.CancelFunc) (untrack func(), err error) {
	untrack, err = s.runs.Track(from, nonce, cancel)
	if errors.Is(err, abort.ErrAborted) {
		return nil, errAborted
	}
	return untrack, err
}

// handleAbort is kindAbort's handler: it stops the session at once and
// answers (the gateway does not wait for it).
func (s *Service) handleAbort(_ context.Context, from uint16, body []byte) ([]byte, error) {
	if len(body) != nonceLen {
		return nil, errMalformed
	}
	var nonce [nonceLen]byte
	copy(nonce[:], body)
	if s.runs.Abort(from, nonce, time.Now()) != nil {
		s.stats.Aborted.Add(1)
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
