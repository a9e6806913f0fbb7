package wallet

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
)

// A scope's quotas (auth.Quota) as the wallet applies them: its signature
// rate as gateway (signRates), its key generations in flight on this node
// (the scheduler's per-scope cap) and its wallet keys on this node
// (keyCounts). Every node applies them to its own work: a co-signer's and
// a key-generation peer's defence is the scheduler's fair share and the
// key count, not the gateway's word.

// rateLimited is the client's error for a scope over its signature rate.
func rateLimited(scope string, after time.Duration) error {
	return api.RateLimited("scope-signatures", after)
}

// peekSlot refuses a request whose claimed scope is over its quota or
// share of this node's sessions of kind w, before authorization (see
// scheduler.peek).
func (s *Service) peekSlot(ctx context.Context, scope string, w work) error {
	if scope == "" {
		return nil
	}
	q, _ := s.quota(ctx, scope)
	scopeMax := 0
	if w == workKeygen {
		scopeMax = q.KeygensInFlight
	}
	if err := s.sched.peek(scope, w, scopeMax); err != nil {
		s.stats.BusyRefused.Add(1)
		return err
	}
	return nil
}

// takeRate takes a token from the bucket of the scope a signing request
// claims (from its approvals, not yet verified) before the approval is
// authorised and its nonces recorded, so that a request refused for its
// rate has spent nothing and can be sent again (the SDK retries it after
// retryAfterMs). The caller gives the token back with refund when the
// request is refused before any signing starts: requests with forged
// approvals claiming a scope hold its tokens only while they are verified.
// A scope this node does not know takes no token (and creates no bucket):
// its requests fail authorisation.
func (s *Service) takeRate(ctx context.Context, scope string) (refund func(), err error) {
	q, known := s.quota(ctx, scope)
	if scope == "" || !known {
		return func() {}, nil
	}
	if d, ok := s.rates.take(scope, q.SignsPerSecond, q.SignBurst); !ok {
		s.stats.RateLimited.Add(1)
		return nil, rateLimited(scope, d)
	}
	return func() { s.rates.refund(scope, q.SignBurst) }, nil
}

// takeCosignRate is a co-signer's own bound on a scope's signatures: each
// of the key's n holders signs at most SignsPerSecond as gateway, so an
// honest cluster never asks one co-signer for more than n times that. A
// malicious gateway that ignores its own quota gets no more: the
// co-signer takes a token from its own bucket for the scope (rate and
// burst n times the gateway's) before it authorises, and gives it back
// when the request is refused.
func (s *Service) takeCosignRate(ctx context.Context, w *wallet) (refund func(), err error) {
	q, _ := s.quota(ctx, w.rec.Scope)
	n := len(w.rec.Parties)
	rate, burst := float64(n)*q.SignsPerSecond, n*q.SignBurst
	if d, ok := s.cosignRates.take(w.rec.Scope, rate, burst); !ok {
		s.stats.RateLimited.Add(1)
		return nil, rateLimited(w.rec.Scope, d)
	}
	return func() { s.cosignRates.refund(w.rec.Scope, burst) }, nil
}

// keyCounts counts the wallet keys of each scope stored on this node: read
// from the store the first time a scope asks, then kept up to date by
// save. Key generations in flight are not counted, so a scope may end at
// most its KeygensInFlight per gateway over MaxKeys.
type keyCounts struct {
	mu sync.Mutex
	m  map[string]int
}

// checkKeys refuses a key generation in scope when the scope already holds
// max keys on this node.
func (s *Service) checkKeys(ctx context.Context, scope string, max int) error {
	s.keys.mu.Lock()
	n, ok := s.keys.m[scope]
	s.keys.mu.Unlock()
	if !ok {
		es, err := s.st.List(ctx, nsOwner, url.PathEscape(scope)+"/", max+1)
		if err != nil {
			return fmt.Errorf("wallet: count the scope's keys: %w", err)
		}
		n = len(es)
		s.keys.mu.Lock()
		if s.keys.m == nil {
			s.keys.m = map[string]int{}
		}
		if _, raced := s.keys.m[scope]; !raced && n <= max {
			// Beyond max the count is not exact (List stopped): not kept.
			s.keys.m[scope] = n
		}
		s.keys.mu.Unlock()
	}
	if n >= max {
		return api.Errorf(api.CodeLimitExceeded, "%s: scope %s holds its quota of %d wallet keys", api.MethodCreateAccount, scope, max)
	}
	return nil
}

// keySaved counts a key stored for scope.
func (s *Service) keySaved(scope string) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if n, ok := s.keys.m[scope]; ok {
		s.keys.m[scope] = n + 1
	}
}
