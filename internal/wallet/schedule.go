package wallet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
)

// Fair scheduling of MPC work (issue 16). A node runs at most
// Limits.Keygens key generations and Limits.Signs signing sessions at once,
// as gateway and as co-signer alike, and shares them among the scopes that
// want them, so that one scope flooding a node cannot starve the others:
//
//   - A scope alone may take all but a reserve of a quarter of the slots
//     (at least one), so a newcomer scope always finds a free slot at once.
//   - When k scopes contend (hold slots, or were refused within the last
//     demandWindow), each may hold at most ⌊limit/k⌋ (at least one): a
//     scope over its share is refused until its sessions end, and the freed
//     slots go to the others.
//   - A scope's own in-flight quota (auth.Quota.KeygensInFlight) caps it
//     further; over it, the refusal is api.CodeRateLimited (the scope's
//     budget, which waiting does not change), not busy.
//   - Slots count sessions, not CPU: while other scopes are active, a
//     scope whose recent CPU use (its sessions weighed by their measured
//     cost, a key generation about twenty signatures) reaches its share of
//     the cores is refused busy too (schedule_cpu.go).
//
// A refused session is "busy" (api.CodeBusy), never an authorisation
// error, with a retry-after hint: about how long one session of that kind
// takes here now (a moving average). A co-signer that is busy refuses the
// invitation before it authorises anything, so nothing of the client's
// approval is spent; the gateway backs off and tries again with the same
// request id, within the request's deadline (busyRetry).
//
// The scheduler holds no queue: refusing at once and retrying from the
// gateway means no node ever holds a slot while waiting for another node's
// (two gateways each holding their own slots while waiting for the
// other's would stall until timeout).

// work is a kind of MPC session.
type work uint8

const (
	workKeygen work = iota
	workSign
	numWork
)

func (w work) String() string {
	if w == workKeygen {
		return "keygen"
	}
	return "sign"
}

// Limits are a node's concurrency limits for MPC sessions (Options.Limits).
type Limits struct {
	// Keygens bounds the key generations this node takes part in at once
	// (default: one per core, at least 2). A 2-of-3 key generation costs
	// about 100 ms of CPU on each node.
	Keygens int
	// Signs bounds the signing sessions this node takes part in at once
	// (default: four per core, at least 8). A signature costs about 3 ms
	// of CPU on each signer; more sessions at once than the cores can
	// run only slow every one of them down, the quiet scope's too (a flood
	// on 2 cores with 32 slots made a quiet scope's p50 4 s).
	Signs int
}

const (

	// demandWindow is how long a refused scope counts as contending,
	// although it holds no slot: long enough for its gateway's next try.
	demandWindow = 2 * time.Second
)

// scheduler hands out session slots (see the comment above). Its methods
// are safe for concurrent use.
type scheduler struct {
	mu     sync.Mutex
	limit  [numWork]int
	total  [numWork]int
	scopes map[string]*scopeLoad
	avg    [numWork]time.Duration // moving average of session durations
	now    func() time.Time
	cpu    *cpuMeter // the scopes' CPU use (schedule_cpu.go)
}

// scopeLoad is one scope's use of the node.
type scopeLoad struct {
	held   [numWork]int
	wanted [numWork]time.Time // when it was last refused
	// strikes counts its refusals, halving every strikeHalfLife: a scope
	// refused often is over its share by its own demand, not by a burst.
	strikes [numWork]float64
}

// strikeHalfLife is how fast a scope's refusals are forgotten.
const strikeHalfLife = 500 * time.Millisecond

// strikesAt returns l's strikes for w decayed to now.
func (l *scopeLoad) strikesAt(w work, now time.Time) float64 {
	return l.strikes[w] * math.Exp2(-float64(now.Sub(l.wanted[w]))/float64(strikeHalfLife))
}

func newScheduler(l Limits) *scheduler {
	if l.Keygens <= 0 {
		l.Keygens = max(2, runtime.GOMAXPROCS(0))
	}
	if l.Signs <= 0 {
		l.Signs = max(8, 4*runtime.GOMAXPROCS(0))
	}
	return &scheduler{
		limit:  [numWork]int{workKeygen: l.Keygens, workSign: l.Signs},
		scopes: map[string]*scopeLoad{},
		avg:    [numWork]time.Duration{workKeygen: time.Second, workSign: 100 * time.Millisecond},
		now:    time.Now,
		cpu:    newCPUMeter(float64(runtime.GOMAXPROCS(0))),
	}
}

// slot is one admitted session. release must be called when it ends; a
// second call does nothing.
type slot struct {
	s     *scheduler
	scope string
	w     work
	start time.Time
	once  sync.Once
	free  bool // refunded: its release charges no CPU (s.mu)
}

// acquire admits a session of kind w for scope, or refuses it with a
// CodeBusy error, or a CodeRateLimited one when the scope holds scopeMax
// (if positive: its own in-flight quota for w).
func (s *scheduler) acquire(scope string, w work, scopeMax int) (*slot, *api.Error) {
	return s.take(scope, w, scopeMax, true)
}

// take is acquire and reacquire: with strike, a refusal is a strike too.
func (s *scheduler) take(scope string, w work, scopeMax int, strike bool) (*slot, *api.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	me := s.scopes[scope]
	if me == nil {
		me = &scopeLoad{}
		s.scopes[scope] = me
	}
	if err := s.decide(scope, me, w, scopeMax, now, true, strike); err != nil {
		return nil, err
	}
	me.held[w]++
	s.total[w]++
	return &slot{s: s, scope: scope, w: w, start: now}, nil
}

// peek returns the error acquire would return now for a scope over its
// quota or its share, changing nothing: a gateway asks it before
// authorising a request, for the scope the request claims, so that a
// request over its scope's share is refused before its approval is
// recorded (the client may send it again), and a request merely claiming
// another scope takes none of that scope's slots nor counts as its demand.
func (s *scheduler) peek(scope string, w work, scopeMax int) *api.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	me := s.scopes[scope]
	if me == nil {
		me = &scopeLoad{}
	}
	return s.decide(scope, me, w, scopeMax, s.now(), false, false)
}

// reacquire is acquire for a request's retry: a refusal counts as the
// scope's demand but not as a new strike (one per request).
func (s *scheduler) reacquire(scope string, w work, scopeMax int) (*slot, *api.Error) {
	return s.take(scope, w, scopeMax, false)
}

// decide applies the scheduling rule to scope (load me) asking for a
// session of kind w; with mark, a refusal counts as the scope's demand and
// idle scopes are forgotten; with strike, a refusal is a strike too (see
// peek). s.mu must be held.
func (s *scheduler) decide(scope string, me *scopeLoad, w work, scopeMax int, now time.Time, mark, strike bool) *api.Error {
	limit := s.limit[w]
	others := 0
	for id, l := range s.scopes {
		switch {
		case l == me:
		case l.held[w] > 0 || now.Sub(l.wanted[w]) < demandWindow:
			others++
		case mark && l.idle(now):
			delete(s.scopes, id)
		}
	}
	share := limit - max(1, limit/4)
	if others > 0 {
		share = limit / (others + 1)
	}
	share = max(1, share)
	if scopeMax > 0 && scopeMax < share {
		share = scopeMax
	}
	if scopeMax > 0 && me.held[w] >= scopeMax {
		// The scope's own quota: its doing, not the node's load, so not
		// "busy" (which the gateway waits out) but its budget.
		return api.RateLimited("scope-"+w.String()+"-in-flight", s.avg[w])
	}
	// peek (!mark) refuses only a scope over its own share by its own
	// persistent demand (its requests refused at least share times lately,
	// each request counted once, however often it retries): when the
	// node is merely full, or a modest scope's burst touches its share, an
	// authorised request goes on to acquire, which counts its scope's
	// demand (peek must not: the scope it sees is only claimed) and waits
	// its turn.
	over := me.held[w] >= share
	if !mark && over && me.strikesAt(w, now) < float64(share) {
		over = false
	}
	refused := func() {
		if mark {
			if strike {
				me.strikes[w] = me.strikesAt(w, now) + 1
			} else {
				me.strikes[w] = me.strikesAt(w, now)
			}
			me.wanted[w] = now
		}
	}
	if mark && s.total[w] >= limit || over {
		refused()
		why := fmt.Sprintf("scope %s has %d of its share of %d %s sessions running on this node", scope, me.held[w], share, w)
		if me.held[w] < share {
			why = fmt.Sprintf("all %d %s slots of this node are in use", limit, w)
		}
		return api.Busy(w.String(), s.avg[w], "busy: "+why+"; try again shortly")
	}
	// Its share of the CPU while other scopes are active (schedule_cpu.go).
	if after, why, over := s.cpu.check(scope, w, mark); over {
		refused()
		return api.Busy(w.String(), after, "busy: "+why+"; try again shortly")
	}
	return nil
}

// idle reports whether l holds nothing and wanted nothing recently.
func (l *scopeLoad) idle(now time.Time) bool {
	for w := range numWork {
		if l.held[w] > 0 || now.Sub(l.wanted[w]) < demandWindow {
			return false
		}
	}
	return true
}

func (sl *slot) release() {
	sl.once.Do(func() {
		s := sl.s
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.now().Sub(sl.start)
		s.avg[sl.w] += (d - s.avg[sl.w]) / 8
		s.total[sl.w]--
		if !sl.free {
			s.cpu.charge(sl.scope, sl.w)
		}
		if l := s.scopes[sl.scope]; l != nil {
			l.held[sl.w]--
			if l.idle(s.now()) {
				delete(s.scopes, sl.scope)
			}
		}
	})
}

// inUse returns how many sessions of kind w hold a slot.
func (s *scheduler) inUse(w work) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total[w]
}

// hint is the retry-after hint for w: the average session duration,
// within [10 ms, 5 s].
func (s *scheduler) hint(w work) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return min(max(s.avg[w], 10*time.Millisecond), 5*time.Second)
}

// busyRetry paces a gateway's retries of a request refused as busy (by its
// own scheduler or a peer's), within the request's deadline: the context's,
// or Options.BusyWait from the first refusal when it has none. Every retry
// reuses the request id, so approvals are recorded for one request only.
type busyRetry struct {
	s        *Service
	w        work
	deadline time.Time
	tries    int
}

func (s *Service) newBusyRetry(ctx context.Context, w work) *busyRetry {
	d := s.busyWait[w]
	deadline := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	return &busyRetry{s: s, w: w, deadline: deadline}
}

// wait sleeps before the next try after cause (a busy refusal): an
// exponential backoff from a quarter of the scheduler's hint (within
// [5 ms, 250 ms], doubling up to 8 times that), with jitter, so that a
// slot freed by the scope's own or another scope's session is tried for
// soon. It returns a
// CodeBusy error for the client instead when the next try would come after
// the deadline, and ctx's error when ctx ends first.
func (r *busyRetry) wait(ctx context.Context, cause error) error {
	hint := r.s.sched.hint(r.w)
	d := min(max(hint/4, 5*time.Millisecond), 250*time.Millisecond) << min(r.tries, 3)
	d = d/2 + rand.N(d/2+1) // jitter: spread the retries of a burst
	r.tries++
	r.s.stats.BusyRetries.Add(1)
	if time.Now().Add(d).After(r.deadline) {
		return api.Busy(r.w.String(), hint, fmt.Sprintf("%s; gave up after %d tries", busyText(cause), r.tries))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// busyText is the client-visible text of a busy refusal.
func busyText(err error) string {
	if pr := asPeerRefusal(err); pr != nil {
		_, msg := pr.split()
		return fmt.Sprintf("node %d is busy: %s", pr.peer, clip(msg))
	}
	if ae, ok := err.(*api.Error); ok {
		return ae.Message
	}
	return "busy"
}

// isBusy reports whether err is a busy refusal: this node's scheduler's,
// or a peer's (its scheduler's "[CodeBusy] …", or its transport's bare
// "busy" when this node already runs its share of handlers there).
func isBusy(err error) bool {
	if _, ok := api.BusyRetryAfter(err); ok {
		return true
	}
	if pr := asPeerRefusal(err); pr != nil {
		code, _ := pr.split()
		return code == api.CodeBusy
	}
	return false
}

// asPeerRefusal returns err's *peerRefusal, or a peer handler's refusal
// (a transport.RemoteError) as one, or nil.
func asPeerRefusal(err error) *peerRefusal {
	var pr *peerRefusal
	if errors.As(err, &pr) {
		return pr
	}
	return asRefusal(err)
}
