package wallet

import (
	"math"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
)

// cpuScheduler is a scheduler on a fake clock with its own CPU meter of
// cores cores, whose scheduling latency is *latency.
func cpuScheduler(cores float64) (*scheduler, *fakeClock, *time.Duration) {
	clk := newFakeClock()
	s := newScheduler(Limits{Signs: 8, Keygens: 2})
	s.now = clk.now
	s.cpu = newCPUMeter(cores)
	s.cpu.now = clk.now
	latency := new(time.Duration)
	s.cpu.latency = func() (time.Duration, bool) { return *latency, true }
	return s, clk, latency
}

// floodCPU plays a noisy scope that tries to start a session of kind w
// every millisecond for d (each ends at once: the slots are not what is
// tested) while a quiet scope signs every 250 ms, and returns the CPU the
// noisy scope was admitted for, in core-seconds, and how often the quiet
// scope was refused.
func floodCPU(t *testing.T, s *scheduler, clk *fakeClock, w work, d time.Duration) (noisy float64, quietRefused int) {
	t.Helper()
	for step := time.Duration(0); step < d; step += time.Millisecond {
		if step%(250*time.Millisecond) == 0 {
			if sl, err := s.acquire("quiet", workSign, 0); err != nil {
				quietRefused++
			} else {
				sl.release()
			}
		}
		if sl, err := s.acquire("noisy", w, 0); err == nil {
			noisy += cpuCost[w].Seconds()
			sl.release()
		} else {
			busyCode(t, err)
		}
		clk.add(time.Millisecond)
	}
	return noisy, quietRefused
}

// TestSchedulerCPUShare: while a quiet scope signs now and then, a noisy
// scope is admitted for its share of the cores (half of 2) and no more,
// whether it floods with key generations or with signatures: weighed by
// their CPU, it gets about twenty times as many signatures as key
// generations.
// The quiet scope is never refused.
func TestSchedulerCPUShare(t *testing.T) {
	const span = 20 * time.Second
	counts := map[work]float64{}
	for _, w := range []work{workKeygen, workSign} {
		s, clk, _ := cpuScheduler(2)
		// The quiet scope is there first (the noisy one alone is not
		// metered: TestSchedulerCPUAlone).
		sl, err := s.acquire("quiet", workSign, 0)
		if err != nil {
			t.Fatal(err)
		}
		sl.release()
		used, refused := floodCPU(t, s, clk, w, span)
		if refused > 0 {
			t.Errorf("%s flood: the quiet scope was refused %d times", w, refused)
		}
		// Its share is 1 core: 20 core-seconds in 20 s, plus what it may
		// take at once before its use reaches the share (share·halfLife/ln2
		// core-seconds) and one session.
		share := 1.0
		burst := share*cpuHalfLife.Seconds()/math.Ln2 + cpuCost[w].Seconds()
		if lo, hi := 0.97*share*span.Seconds(), 1.03*share*span.Seconds()+burst; used < lo || used > hi {
			t.Errorf("%s flood: the noisy scope was admitted for %.2f core-seconds in %v, want %.2f–%.2f", w, used, span, lo, hi)
		}
		counts[w] = used / cpuCost[w].Seconds()
		t.Logf("%s flood: the noisy scope was admitted for %.0f sessions, %.2f core-seconds in %v", w, counts[w], used, span)
	}
	if r := counts[workSign] / counts[workKeygen]; r < 18 || r > 22 {
		t.Errorf("the noisy scope got %.0f signatures for %.0f key generations (ratio %.1f), want about %v", counts[workSign], counts[workKeygen], r, cpuCost[workKeygen]/cpuCost[workSign])
	}
}

// TestSchedulerCPUAlone: a scope alone is not metered; once another scope
// is active it is refused busy (with a hint of when its use is back
// within its share) until its use has decayed below its share, and when
// the other scope has been gone for cpuActiveWindow it is alone again.
func TestSchedulerCPUAlone(t *testing.T) {
	s, clk, _ := cpuScheduler(2)
	// Alone: 40 key generations in 400 ms (10 cores' worth) are all
	// admitted.
	for i := range 40 {
		sl, err := s.acquire("noisy", workKeygen, 0)
		if err != nil {
			t.Fatalf("key generation %d of a scope alone: %v", i, err)
		}
		sl.release()
		clk.add(10 * time.Millisecond)
	}
	// The quiet scope comes: it is admitted, the noisy one is not.
	sl, err := s.acquire("quiet", workSign, 0)
	if err != nil {
		t.Fatalf("the quiet scope: %v", err)
	}
	sl.release()
	_, err = s.acquire("noisy", workSign, 0)
	busyCode(t, err)
	// The hint is when its use falls within its share: then it is
	// admitted, and not before.
	hint, _ := api.BusyRetryAfter(err)
	if hint < time.Second {
		t.Fatalf("hint %v for a scope using 5 times its share, want about %v", hint, time.Duration(float64(cpuHalfLife)*math.Log2(5)))
	}
	clk.add(hint - 10*time.Millisecond)
	if _, err := s.acquire("noisy", workSign, 0); err == nil {
		t.Fatalf("admitted before its hint (%v)", hint)
	}
	clk.add(20 * time.Millisecond)
	if sl, err := s.acquire("noisy", workSign, 0); err != nil {
		t.Fatalf("refused after its hint (%v): %v", hint, err)
	} else {
		sl.release()
	}
	// The quiet scope leaves: after cpuActiveWindow the noisy one is alone.
	clk.add(cpuActiveWindow)
	for i := range 40 {
		sl, err := s.acquire("noisy", workKeygen, 0)
		if err != nil {
			t.Fatalf("key generation %d once the quiet scope left: %v", i, err)
		}
		sl.release()
	}
}

// TestSchedulerCPUPeek: peek refuses a scope over its CPU share before
// authorization, and neither peek nor the refusal of a claimed scope makes
// it active: a flood of requests claiming scopes does not shrink the
// noisy scope's share.
func TestSchedulerCPUPeek(t *testing.T) {
	s, clk, _ := cpuScheduler(2)
	for range 20 {
		sl, err := s.acquire("noisy", workKeygen, 0)
		if err != nil {
			t.Fatal(err)
		}
		sl.release()
	}
	// Requests claiming other scopes: noisy is still alone.
	for _, c := range []string{"claimed-1", "claimed-2", "claimed-3"} {
		if err := s.peek(c, workSign, 0); err != nil {
			t.Fatalf("peek %s: %v", c, err)
		}
	}
	if err := s.peek("noisy", workKeygen, 0); err != nil {
		t.Fatalf("peek refused a scope alone: %v", err)
	}
	sl, err := s.acquire("quiet", workSign, 0)
	if err != nil {
		t.Fatal(err)
	}
	sl.release()
	busyCode(t, s.peek("noisy", workKeygen, 0))
	if err := s.peek("quiet", workSign, 0); err != nil {
		t.Fatalf("peek refused the quiet scope: %v", err)
	}
	clk.add(cpuActiveWindow)
	if err := s.peek("noisy", workKeygen, 0); err != nil {
		t.Fatalf("peek refused the noisy scope after the quiet one left: %v", err)
	}
}

// TestSchedulerCPUAdapts: while goroutines wait for a core longer than
// cpuLatencyTarget, the capacity the shares divide shrinks (to a twentieth
// of the cores at least) and the noisy scope is admitted for that much
// less; once the latency is low again it grows back.
func TestSchedulerCPUAdapts(t *testing.T) {
	s, clk, latency := cpuScheduler(2)
	sl, err := s.acquire("quiet", workSign, 0)
	if err != nil {
		t.Fatal(err)
	}
	sl.release()
	*latency = 5 * time.Millisecond
	floodCPU(t, s, clk, workSign, 2*time.Second) // the capacity falls and the burst decays
	used, refused := floodCPU(t, s, clk, workSign, 10*time.Second)
	if refused > 0 {
		t.Errorf("the quiet scope was refused %d times", refused)
	}
	if s.cpu.cores != 0.1 {
		t.Fatalf("capacity %.2f cores after 2 s of saturation, want the floor 0.1", s.cpu.cores)
	}
	// Half of 0.1 core for 10 s.
	if lo, hi := 0.9*0.05*10, 1.1*0.05*10; used < lo || used > hi {
		t.Errorf("saturated: the noisy scope was admitted for %.2f core-seconds in 10 s, want %.2f–%.2f", used, lo, hi)
	}
	*latency = 100 * time.Microsecond
	floodCPU(t, s, clk, workSign, 2*time.Second)
	if s.cpu.cores != 2 {
		t.Fatalf("capacity %.2f cores 2 s after the saturation ended, want all 2", s.cpu.cores)
	}
	used, _ = floodCPU(t, s, clk, workSign, 10*time.Second)
	if used < 0.97*10 {
		t.Errorf("after the saturation: the noisy scope was admitted for %.2f core-seconds in 10 s, want its share of 1 core", used)
	}
}

// TestSchedulerCPURefund: a key generation a peer refused is not charged,
// so that a gateway's refused tries do not
// use up its scope's share.
func TestSchedulerCPURefund(t *testing.T) {
	s, clk, _ := cpuScheduler(2)
	sl, err := s.acquire("noisy", workKeygen, 0)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(cpuHalfLife)
	sl.refund()
	sl.release()
	s.cpu.mu.Lock()
	defer s.cpu.mu.Unlock()
	if u := s.cpu.scopes["noisy"]; u != nil && u.use(clk.now()) > 0 {
		t.Fatalf("use %.3f cores after a refund, want 0", u.use(clk.now()))
	}
}
