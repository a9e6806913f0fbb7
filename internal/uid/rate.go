package uid

import (
	"sync"
	"time"
)

// rates is a token bucket of OPRF evaluations per scope, on one node: each
// evaluation is an oracle query (package oprf's doc), so a scope gets
// rate a second, in bursts of at most burst.
type rates struct {
	rate  float64
	burst int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets is how many scopes' buckets are kept before the idle ones
// (full: the same as none) are dropped.
const maxBuckets = 4096

func newRates(rate float64, burst int) *rates {
	if rate <= 0 {
		rate = 20
	}
	if burst < 1 {
		burst = 40
	}
	return &rates{rate: rate, burst: burst, now: time.Now, m: map[string]*bucket{}}
}

// peek reports, without taking one, whether scope's bucket has a token,
// and if not how long until it has. Requests check it before their
// approval is verified (and spent), then take after.
func (r *rates) peek(scope string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.m[scope]
	if b == nil {
		return 0, true
	}
	tokens := min(float64(r.burst), b.tokens+r.now().Sub(b.last).Seconds()*r.rate)
	if tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - tokens) / r.rate * float64(time.Second)), false
}

// take takes one token from scope's bucket; if there is none it takes
// nothing and returns how long until there is one.
func (r *rates) take(scope string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.m[scope]
	if b == nil {
		if len(r.m) >= maxBuckets {
			for k, o := range r.m {
				if now.Sub(o.last).Seconds()*r.rate >= float64(r.burst) {
					delete(r.m, k)
				}
			}
		}
		b = &bucket{tokens: float64(r.burst), last: now}
		r.m[scope] = b
	}
	b.tokens = min(float64(r.burst), b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / r.rate * float64(time.Second)), false
}
