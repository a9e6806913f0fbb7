package envelope

import (
	"context"
	"errors"
	"sync"
	"time"
)

// NonceStore remembers request nonces until they expire.
//
// Seen records nonce until expiry and reports whether it was already
// recorded (and not yet expired). It must be atomic: of two concurrent calls
// with the same nonce, exactly one returns false. An error means the
// request must be refused.
type NonceStore interface {
	Seen(ctx context.Context, nonce []byte, expiry time.Time) (bool, error)
}

// MemoryNonceStore is an in-memory NonceStore for one process. It holds at
// most Max live nonces (default 1<<20) and refuses new ones when full rather
// than forget live ones.
type MemoryNonceStore struct {
	Max int
	Now func() time.Time // time.Now if nil

	mu        sync.Mutex
	m         map[string]time.Time
	nextSweep time.Time
}

// ErrNonceStoreFull is returned by MemoryNonceStore when it holds Max live
// nonces.
var ErrNonceStoreFull = errors.New("envelope: nonce store full")

// Seen implements NonceStore.
func (s *MemoryNonceStore) Seen(ctx context.Context, nonce []byte, expiry time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	max := s.Max
	if max <= 0 {
		max = 1 << 20
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]time.Time)
	}
	if exp, ok := s.m[string(nonce)]; ok && now.Before(exp) {
		return true, nil
	}
	if len(s.m) >= max || !now.Before(s.nextSweep) {
		for k, exp := range s.m {
			if !now.Before(exp) {
				delete(s.m, k)
			}
		}
		s.nextSweep = now.Add(time.Minute)
	}
	if len(s.m) >= max {
		return false, ErrNonceStoreFull
	}
	s.m[string(nonce)] = expiry
	return false, nil
}

// Len returns the number of nonces held, expired or not.
func (s *MemoryNonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
