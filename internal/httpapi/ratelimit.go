package httpapi

import (
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
)

// Rate limits (issue 16). Every JSON-RPC request (each element of a batch
// counts one) takes a token from two buckets: its client address's
// (ClientSource: the TCP peer, an IPv4 address or an IPv6 /64) and the
// scope's it names (its params' "scope" member, or the scope a sealed
// request is bound to; requests naming none take only the client's). The
// passkey ceremony methods, which anyone may call without logging in, take
// from a second, stricter pair of buckets as well. A request that finds a
// bucket empty is refused with api.CodeRateLimited and a retry-after hint,
// takes no token from any bucket, and does not run.
//
// A flood against one scope thus empties that scope's buckets only: other
// scopes' users are not refused. A flood from one address empties that
// address's buckets only.

// Rate is a token bucket: PerSecond tokens are added each second, up to
// Burst. A zero PerSecond disables the bucket.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits configure the buckets of Options.RateLimits.
type RateLimits struct {
	Client Rate // each client address, every method
	Scope  Rate // each scope, every method
	// CeremonyClient and CeremonyScope bucket the methods in Ceremony
	// (taken in addition to Client and Scope).
	CeremonyClient Rate
	CeremonyScope  Rate
	// Ceremony lists the unauthenticated ceremony methods; nil means
	// CeremonyMethods.
	Ceremony []string
	// MaxTracked bounds the buckets kept per kind (memory); 0 means
	// DefaultMaxTracked. A full bucket is forgotten first (it is the same
	// as a new one), then any.
	MaxTracked int
}

// CeremonyMethods are the methods anyone may call without logging in that
// open or complete a passkey ceremony (with Passport's aliases).
var CeremonyMethods = []string{
	api.MethodInitiateRegistration, api.AliasInitiateRegistration,
	api.MethodCompleteRegistration, api.AliasCompleteRegistration,
	api.MethodInitiateAuthentication, api.AliasInitiateAuthentication,
	api.MethodCompleteAuthentication, api.AliasCompleteAuthentication,
}

// DefaultRateLimits suit a node serving many apps' users; keymesh dev uses
// them too (a person clicking through the login page, or `keymesh bench`
// from one address at a few hundred signatures a second, stays well under
// them). Operators change them in the node config (rate_limits).
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Client:         Rate{PerSecond: 1000, Burst: 2000},
		Scope:          Rate{PerSecond: 2000, Burst: 4000},
		CeremonyClient: Rate{PerSecond: 5, Burst: 20},
		CeremonyScope:  Rate{PerSecond: 50, Burst: 200},
	}
}

// DefaultMaxTracked is RateLimits.MaxTracked's default.
const DefaultMaxTracked = 1 << 16

// bucket is one token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill brings b up to now under r and reports whether it is full.
func (b *bucket) refill(r Rate, now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(r.Burst), b.tokens+d.Seconds()*r.PerSecond)
		b.last = now
	}
	return b.tokens >= float64(r.Burst)
}

// wait is how long until b holds one token under r.
func (b *bucket) wait(r Rate) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / r.PerSecond * float64(time.Second)))
}

// buckets are the buckets of one kind, by key.
type buckets struct {
	name string
	rate Rate
	m    map[string]*bucket
}

func (bs *buckets) get(key string, now time.Time, maxTracked int) *bucket {
	if b := bs.m[key]; b != nil {
		b.refill(bs.rate, now)
		return b
	}
	if len(bs.m) >= maxTracked {
		for k, b := range bs.m {
			if b.refill(bs.rate, now) {
				delete(bs.m, k)
			}
		}
		for k := range bs.m {
			if len(bs.m) < maxTracked {
				break
			}
			delete(bs.m, k)
		}
	}
	b := &bucket{tokens: float64(bs.rate.Burst), last: now}
	bs.m[key] = b
	return b
}

// rateLimiter applies RateLimits. It is safe for concurrent use.
type rateLimiter struct {
	mu         sync.Mutex
	now        func() time.Time
	maxTracked int
	ceremony   map[string]bool
	client     buckets
	scope      buckets
	cerClient  buckets
	cerScope   buckets
}

func newRateLimiter(l RateLimits, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = DefaultMaxTracked
	}
	if l.Ceremony == nil {
		l.Ceremony = CeremonyMethods
	}
	rl := &rateLimiter{now: now, maxTracked: l.MaxTracked, ceremony: map[string]bool{}}
	for _, m := range l.Ceremony {
		rl.ceremony[m] = true
	}
	for _, b := range []struct {
		bs   *buckets
		name string
		r    Rate
	}{
		{&rl.client, "client", l.Client}, {&rl.scope, "scope", l.Scope},
		{&rl.cerClient, "ceremony-client", l.CeremonyClient}, {&rl.cerScope, "ceremony-scope", l.CeremonyScope},
	} {
		*b.bs = buckets{name: b.name, rate: b.r, m: map[string]*bucket{}}
	}
	return rl
}

// admit takes one token from each bucket that applies to a request of
// method in scope from client, or none and returns the refusal naming the
// bucket that would wait longest. Empty client or scope skip their
// buckets.
func (rl *rateLimiter) admit(client, scope, method string) *api.Error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	now := rl.now()
	var held [4]*bucket
	var rates [4]Rate
	n := 0
	use := func(bs *buckets, key string) {
		if key == "" || bs.rate.PerSecond <= 0 {
			return
		}
		held[n], rates[n] = bs.get(key, now, rl.maxTracked), bs.rate
		n++
	}
	names := [4]string{}
	add := func(bs *buckets, key string) {
		before := n
		use(bs, key)
		if n > before {
			names[n-1] = bs.name
		}
	}
	add(&rl.client, client)
	add(&rl.scope, scope)
	if rl.ceremony[method] {
		add(&rl.cerClient, client)
		add(&rl.cerScope, scope)
	}
	var worst time.Duration
	refusedBy := ""
	for i := range n {
		if w := held[i].wait(rates[i]); w > worst {
			worst, refusedBy = w, names[i]
		}
	}
	if refusedBy != "" {
		return api.RateLimited(refusedBy, worst)
	}
	for i := range n {
		held[i].tokens--
	}
	return nil
}

// paramsScope returns the "scope" member of a params object if it is a
// string, else "". Only the top level of the object is read.
func paramsScope(params json.RawMessage) string {
	if len(params) == 0 || params[0] != '{' {
		return ""
	}
	var p struct {
		Scope string `json:"scope"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	return p.Scope
}
