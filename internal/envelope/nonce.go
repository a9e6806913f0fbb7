package envelope

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// NonceStore remembers request nonces until they expire.
//
// Seen records nonce until expiry and reports whether it was already
// recorded (and not yet expired). It must be atomic: of two concurrent calls
// with the same nonce, exactly one returns false. An error means the
// request must be refused; an error wrapping ErrBusy means only that its
// source has too many requests in the window (Source), and the opener
// still lets the caller seal that refusal to the client.
//
// The openers call Seen only for a request that authenticated (its AEAD
// opened, its header MAC and timestamp verified), so junk that does not
// open records nothing. Anyone can seal a valid request to a node's public
// key, though, so a store must also bound what one source can record.
type NonceStore interface {
	Seen(ctx context.Context, nonce []byte, expiry time.Time) (bool, error)
}

// ErrBusy: the request's source already has PerSource live nonces
// recorded. Only that source is refused, until its nonces expire (at most
// DefaultWindow+MaxSkew).
var ErrBusy = errors.New("envelope: too many sealed requests from this source within the window")

type sourceKey struct{}

// WithSource returns ctx naming the source of the request being opened (the
// client's network address, or its /64 for IPv6), which a NonceStore
// charges the request's nonce to.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// Source returns the source WithSource put in ctx, or "".
func Source(ctx context.Context) string {
	v, _ := ctx.Value(sourceKey{}).(string)
	return v
}

// MemoryNonceStore is an in-memory NonceStore for one process whose state
// no one can fill:
//
//   - Each source (Source(ctx); requests without one share the source "")
//     holds at most PerSource live nonces (default Max/64, at least 16). A
//     source over its share is refused with ErrBusy; the others are not
//     affected. A replay is caught whatever source it comes from, since
//     nonces are looked up across all sources.
//   - The store holds at most Max live nonces (default 1<<20). Reaching it
//     (at least Max/PerSource sources at their share) does not refuse
//     requests wholesale: the nonce with the earliest expiry is forgotten,
//     and the store's floor rises to that expiry, so that from then on a
//     nonce expiring at or before the floor is refused (ErrExpired wrapped
//     in the error; a forgotten nonce cannot be replayed). Under such a
//     flood the window narrows to the most recent requests. A request
//     sealed at the node's current time is refused only if the flood
//     replaced the whole store within MaxSkew (requests may be sealed that
//     far ahead of the node's clock): Max valid requests in 10 s, 100 000
//     HPKE decapsulations a second with the default Max, from at least 64
//     addresses.
type MemoryNonceStore struct {
	Max       int
	PerSource int
	Now       func() time.Time // time.Now if nil

	mu       sync.Mutex
	m        map[string]*nonceEntry
	byExpiry expiryHeap
	sources  map[string]int
	floor    time.Time
}

type nonceEntry struct {
	nonce  string
	expiry time.Time
	source string
	index  int // in byExpiry
}

// expiryHeap is a min-heap of entries by expiry (container/heap).
type expiryHeap []*nonceEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*nonceEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func (s *MemoryNonceStore) limits() (max, per int) {
	max = s.Max
	if max <= 0 {
		max = 1 << 20
	}
	per = s.PerSource
	if per <= 0 {
		per = max / 64
		if per < 16 {
			per = 16
		}
	}
	return max, per
}

func (s *MemoryNonceStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// init and expire must be called with s.mu held.
func (s *MemoryNonceStore) init() {
	if s.m == nil {
		s.m = make(map[string]*nonceEntry)
		s.sources = make(map[string]int)
	}
}

func (s *MemoryNonceStore) expire(now time.Time) {
	for len(s.byExpiry) > 0 && !now.Before(s.byExpiry[0].expiry) {
		s.remove(heap.Pop(&s.byExpiry).(*nonceEntry))
	}
}

func (s *MemoryNonceStore) remove(e *nonceEntry) {
	delete(s.m, e.nonce)
	if s.sources[e.source]--; s.sources[e.source] <= 0 {
		delete(s.sources, e.source)
	}
}

// insert records e, forgetting the earliest expiries beyond max and raising
// the floor to them.
func (s *MemoryNonceStore) insert(e *nonceEntry, max int) {
	s.m[e.nonce] = e
	s.sources[e.source]++
	heap.Push(&s.byExpiry, e)
	for len(s.byExpiry) > max {
		old := heap.Pop(&s.byExpiry).(*nonceEntry)
		s.remove(old)
		if old.expiry.After(s.floor) {
			s.floor = old.expiry
		}
	}
}

// Seen implements NonceStore.
func (s *MemoryNonceStore) Seen(ctx context.Context, nonce []byte, expiry time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.now()
	max, per := s.limits()
	src := Source(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.expire(now)
	if e, ok := s.m[string(nonce)]; ok && now.Before(e.expiry) {
		return true, nil
	}
	if !expiry.After(s.floor) {
		return false, fmt.Errorf("%w: the node's replay cache is under load and no longer remembers requests this old", ErrExpired)
	}
	if s.sources[src] >= per {
		return false, fmt.Errorf("%w (%d)", ErrBusy, per)
	}
	s.insert(&nonceEntry{nonce: string(nonce), expiry: expiry, source: src}, max)
	return false, nil
}

// Restore records a nonce known to have been accepted before (a node
// reloading its persisted nonces at start), charged to no source's share.
func (s *MemoryNonceStore) Restore(nonce []byte, expiry time.Time) {
	now := s.now()
	max, _ := s.limits()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.expire(now)
	if _, ok := s.m[string(nonce)]; ok || !now.Before(expiry) || !expiry.After(s.floor) {
		return
	}
	s.insert(&nonceEntry{nonce: string(nonce), expiry: expiry, source: "\x00restored"}, max)
}

// Len returns the number of nonces held, expired or not.
func (s *MemoryNonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
