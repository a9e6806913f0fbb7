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

// peekRate refuses a signing request whose claimed scope (from its
// approvals, not yet verified) has no token left, taking none.
func (s *Service) peekRate(ctx context.Context, scope string) error {
	if scope == "" {
		return nil
	}
	q, _ := s.quota(ctx, scope)
	if d := s.rates.peek(scope, q.SignsPerSecond, q.SignBurst); d > 0 {
		s.stats.RateLimited.Add(1)
		return rateLimited(scope, d)
	}
	return nil
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

// takeRate takes an authorised signing request's token from its scope's
// bucket.
func (s *Service) takeRate(ctx context.Context, scope string) error {
	q, _ := s.quota(ctx, scope)
	if d, ok := s.rates.take(scope, q.SignsPerSecond, q.SignBurst); !ok {
		s.stats.RateLimited.Add(1)
		return rateLimited(scope, d)
	}
	return nil
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
