package wallet

import (
	"sync"
	"time"
)

// signRates is the gateway's token bucket of signatures per scope
// (auth.Quota.SignsPerSecond, a bucket of SignBurst tokens). A request is
// checked against its claimed scope before authorization without taking a
// token (peek: an unauthenticated request naming another scope cannot
// drain that scope's bucket), and takes its token once authorised (take):
// a scope over its rate is refused before its approval is recorded, except
// for requests racing for the last token.
type signRates struct {
	mu  sync.Mutex
	m   map[string]*bucket
	now func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxIdleBuckets is how many buckets are kept before full ones (the same
// as none) are dropped.
const maxIdleBuckets = 4096

func newSignRates() *signRates {
	return &signRates{m: map[string]*bucket{}, now: time.Now}
}

// refill returns scope's bucket brought up to now (a full one for a scope
// without a bucket; nil when it does not exist and create is false).
func (r *signRates) refill(scope string, rate float64, burst int, create bool) *bucket {
	now := r.now()
	b := r.m[scope]
	if b == nil {
		if !create {
			return nil
		}
		if len(r.m) >= maxIdleBuckets {
			r.prune(now)
		}
		b = &bucket{tokens: float64(burst), last: now}
		r.m[scope] = b
		return b
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	return b
}

// prune drops the buckets idle for a minute: they are full (every rate is
// at least one a second, and a burst is one second's worth), the same as
// no bucket.
func (r *signRates) prune(now time.Time) {
	for k, b := range r.m {
		if now.Sub(b.last) > time.Minute {
			delete(r.m, k)
		}
	}
}

// take takes a token from scope's bucket; if there is none it takes
// nothing and returns how long until there is one.
func (r *signRates) take(scope string, rate float64, burst int) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.refill(scope, rate, burst, true)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

// refund gives back a token taken from scope's bucket, up to its burst.
func (r *signRates) refund(scope string, burst int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.m[scope]; b != nil {
		b.tokens = min(float64(burst), b.tokens+1)
	}
}
