package wallet

import (
	"fmt"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
)

// fakeClock is a settable clock for the scheduler and the token bucket.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func busyCode(t *testing.T, e *api.Error) {
	t.Helper()
	if e == nil || e.Code != api.CodeBusy {
		t.Fatalf("want a CodeBusy refusal, got %v", e)
	}
	if d, ok := api.BusyRetryAfter(e); !ok || d <= 0 {
		t.Fatalf("busy refusal without a retry-after hint: %v", e)
	}
}

// TestSchedulerFairShare plays a noisy scope that asks for every slot: it
// gets all but a reserve, a second scope still gets a slot at once, and
// from then on the noisy scope is refused (busy, with a retry-after hint)
// until it is back within its half; freed slots go to the quiet scope.
func TestSchedulerFairShare(t *testing.T) {
	clk := newFakeClock()
	s := newScheduler(Limits{Signs: 8, Keygens: 2})
	s.now = clk.now
	var noisy []*slot
	for {
		sl, err := s.acquire("noisy", workSign, 0)
		if err != nil {
			busyCode(t, err)
			break
		}
		noisy = append(noisy, sl)
	}
	if len(noisy) != 6 { // 8 − a reserve of ⌊8/4⌋
		t.Fatalf("a scope alone got %d of 8 slots, want 6", len(noisy))
	}
	quiet, err := s.acquire("quiet", workSign, 0)
	if err != nil {
		t.Fatalf("the quiet scope was refused while the noisy one held %d slots: %v", len(noisy), err)
	}
	// Two scopes contend: the noisy one is over its share of 4 and gets
	// nothing more, even after releasing one slot.
	noisy[0].release()
	noisy = noisy[1:]
	if _, err := s.acquire("noisy", workSign, 0); err == nil {
		t.Fatal("a scope over its fair share was admitted")
	}
	var quiets []*slot
	for range 2 { // up to the node's limit: noisy 5, quiet 1 + 2
		sl, err := s.acquire("quiet", workSign, 0)
		if err != nil {
			t.Fatalf("the quiet scope was refused within its share: %v", err)
		}
		quiets = append(quiets, sl)
	}
	if _, err := s.acquire("quiet", workSign, 0); err == nil {
		t.Fatal("the node went over its limit")
	}
	// A released slot is released once: a second call does not free
	// another.
	quiet.release()
	quiet.release()
	if s.inUse(workSign) != len(noisy)+len(quiets) {
		t.Fatalf("total %d after a double release, want %d", s.inUse(workSign), len(noisy)+len(quiets))
	}
	// Key generations are a separate pool, capped by the scope's quota.
	k, err := s.acquire("noisy", workKeygen, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.acquire("noisy", workKeygen, 1); err == nil || err.Code != api.CodeRateLimited {
		t.Fatalf("a scope over its key generations in flight: want CodeRateLimited, got %v", err)
	}
	k.release()
	// When everything is released and the demand window has passed, the
	// scheduler forgets the scopes.
	for _, sl := range append(noisy, quiets...) {
		sl.release()
	}
	clk.add(demandWindow + time.Second)
	if sl, err := s.acquire("noisy", workSign, 0); err != nil {
		t.Fatal(err)
	} else {
		sl.release()
	}
	if len(s.scopes) > 1 {
		t.Fatalf("%d scopes remembered, want at most the last one", len(s.scopes))
	}
}

// TestSchedulerRefusedScopeContends: a scope refused while it holds
// nothing counts as contending for demandWindow, so the holders' shares
// shrink and the slots they free go to it.
func TestSchedulerRefusedScopeContends(t *testing.T) {
	clk := newFakeClock()
	s := newScheduler(Limits{Signs: 8, Keygens: 1})
	s.now = clk.now
	take := func(scope string, n int) []*slot {
		t.Helper()
		var out []*slot
		for range n {
			sl, err := s.acquire(scope, workSign, 0)
			if err != nil {
				t.Fatalf("%s: %v", scope, err)
			}
			out = append(out, sl)
		}
		return out
	}
	a := take("a", 6) // alone: 8 − a reserve of 2
	b := take("b", 2) // the node is full
	if _, err := s.acquire("d", workSign, 0); err == nil {
		t.Fatal("over the node's limit")
	}
	for _, sl := range a[:3] {
		sl.release()
	}
	// a holds 3; against b alone its share would be 4, but d wants too:
	// ⌊8/3⌋ = 2.
	if _, err := s.acquire("a", workSign, 0); err == nil {
		t.Fatal("a scope over its share took a slot a refused scope was waiting for")
	}
	d := take("d", 2)
	// Once d has stopped asking for demandWindow, a may grow again.
	for _, sl := range d {
		sl.release()
	}
	clk.add(demandWindow + time.Millisecond)
	take("a", 1)
	_ = b
}

// TestSignRates: the bucket holds a burst, refills at the rate, a refund
// gives a token back (never beyond the burst), and a scope's bucket is its
// own.
func TestSignRates(t *testing.T) {
	clk := newFakeClock()
	r := newSignRates()
	r.now = clk.now
	for i := range 2 {
		if _, ok := r.take("a", 2, 2); !ok {
			t.Fatalf("take %d of a burst of 2 refused", i)
		}
	}
	if d, ok := r.take("a", 2, 2); ok || d != 500*time.Millisecond {
		t.Fatalf("an empty bucket: ok %v, retry after %v (want 500ms)", ok, d)
	}
	r.refund("a", 2)
	if _, ok := r.take("a", 2, 2); !ok {
		t.Fatal("a refunded token cannot be taken")
	}
	if _, ok := r.take("b", 2, 2); !ok {
		t.Fatal("another scope's bucket was drained by this one")
	}
	r.refund("b", 2)
	r.refund("b", 2)
	if r.m["b"].tokens != 2 {
		t.Fatalf("refunds filled a bucket beyond its burst: %v tokens", r.m["b"].tokens)
	}
	clk.add(500 * time.Millisecond)
	if _, ok := r.take("a", 2, 2); !ok {
		t.Fatal("no token after refilling for 1/rate")
	}
	clk.add(time.Hour)
	r.prune(clk.now())
	if len(r.m) != 0 {
		t.Fatalf("%d idle buckets kept", len(r.m))
	}
}

// TestSchedulerPeek: peek (before authorization, for the scope a request
// only claims) refuses a scope whose own requests keep being refused, lets
// a scope whose burst merely touches its share go on to wait its turn, and
// changes nothing: a flood of requests claiming a scope neither takes its
// slots nor counts as its demand.
func TestSchedulerPeek(t *testing.T) {
	clk := newFakeClock()
	s := newScheduler(Limits{Signs: 8, Keygens: 2})
	s.now = clk.now
	var quiet []*slot
	for range 6 {
		sl, err := s.acquire("quiet", workSign, 0)
		if err != nil {
			t.Fatal(err)
		}
		quiet = append(quiet, sl)
	}
	// At its share, refused once: a burst, not a flood.
	if _, err := s.acquire("quiet", workSign, 0); err == nil {
		t.Fatal("over the share")
	}
	if err := s.peek("quiet", workSign, 0); err != nil {
		t.Fatalf("peek refused a scope refused once: %v", err)
	}
	// Its requests refused again and again (each once): peek refuses it,
	// busy with a hint.
	for range 6 {
		s.acquire("quiet", workSign, 0)
	}
	busyCode(t, s.peek("quiet", workSign, 0))
	// Retries of one request are no new strikes.
	clk.add(10 * strikeHalfLife)
	for range 50 {
		s.reacquire("quiet", workSign, 0)
	}
	if err := s.peek("quiet", workSign, 0); err != nil {
		t.Fatalf("a request's retries counted as strikes: %v", err)
	}
	// Peeking for other scopes takes nothing and is no demand: quiet keeps
	// the share of a scope alone.
	for i := range 1000 {
		s.peek(fmt.Sprintf("claimed-%d", i), workSign, 0)
	}
	clk.add(demandWindow + time.Millisecond)
	if s.inUse(workSign) != 6 || len(s.scopes) != 1 {
		t.Fatalf("peek changed the scheduler: %d in use, %d scopes", s.inUse(workSign), len(s.scopes))
	}
	for _, sl := range quiet {
		sl.release()
	}
}
