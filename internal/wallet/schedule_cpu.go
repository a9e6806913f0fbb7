package wallet

import (
	"fmt"
	"math"
	"runtime/metrics"
	"sync"
	"time"
)

// CPU shares (issue 16). The slots of schedule.go count sessions, but what
// a session takes from the others is CPU, and a key generation costs about
// twenty signatures' worth of it. A flood that keeps its fair share of
// slots full still saturates the cores, and then every other scope's
// sessions wait for CPU, not for slots (a quiet scope's p99 went from
// 25 ms to 0.5–1.3 s on 2 cores).
//
// So the scheduler also meters each scope's CPU: every session is charged,
// when it ends, its kind's measured cost (cpuCost) into a per-scope sum that
// halves every cpuHalfLife, which makes sum·ln2/halfLife the scope's recent
// use in cores. While k scopes are active (admitted or refused within
// cpuActiveWindow), a scope whose use would pass cores/k is refused busy
// until its use has decayed (check): a noisy scope keeps half of the cores
// against one quiet scope, however it mixes key generations and
// signatures, and the other half stays idle enough for the quiet scope's
// sessions to run at once. A scope alone is not metered (the slots bound
// it): the rule costs throughput only while someone else is there.
//
// Each node (scheduler) has its own meter. The cores are not all the
// node's to count on: other processes on the machine take their part,
// other nodes in the same process (keymesh dev, the tests) share its
// cores, and the flood's HTTP handling, auth and storage cost CPU the
// charges do not count. So the meter's capacity
// (what the shares divide) adapts to what the Go scheduler sees: every
// cpuSampleEvery it reads how long runnable goroutines waited for a core
// (runtime/metrics /sched/latencies:seconds); when the 90th percentile is
// over cpuLatencyTarget the cores are saturated, and the capacity shrinks
// by 30 % (to a twentieth of GOMAXPROCS at least); otherwise it grows back
// by a tenth of GOMAXPROCS. A quiet scope's sessions then find a core
// sooner when the machine is loaded, at the cost of the noisy scope's
// throughput, and only while another scope is active.
//
// A co-signer or key generation peer takes its slot, and so charges the
// scope, before it authorises the invitation (schedule.go): a malicious
// peer can spend a scope's CPU share here as it can already hold its
// slots; the refusal is busy, which the honest gateway retries.

// cpuCost is the CPU one node spends on a session of each kind, measured
// with `go test -bench 'BenchmarkKeygen$|BenchmarkSign$' -benchtime 10x`
// in internal/mpc/dkls23/{keygen,sign} on 2 cores (2026-12-05): a 2-of-3
// key generation 317 ms for its 3 parties, a 2-of-3 signature 10.5 ms for
// its 2 (the machine was loaded, which slows both alike). Auth, storage
// and HTTP add a little to each; the ratio is what matters.
var cpuCost = [numWork]time.Duration{workKeygen: 100 * time.Millisecond, workSign: 5 * time.Millisecond}

const (
	// cpuHalfLife is how fast a scope's CPU charges are forgotten: long
	// enough to span a few sessions, short enough that a scope refused
	// for its use is admitted again within about a second.
	cpuHalfLife = 500 * time.Millisecond
	// cpuActiveWindow is how long a scope charged or refused counts as
	// active: a quiet scope signing a few times a second is always there.
	cpuActiveWindow = 2 * time.Second
	// cpuSampleEvery is how often the capacity adapts to the scheduling
	// latency, and cpuLatencyTarget the latency (90th percentile) over
	// which the cores count as saturated: a signature wakes its
	// goroutines about ten times, so 1 ms each keeps a 13 ms signature
	// within twice its time.
	cpuSampleEvery   = 100 * time.Millisecond
	cpuLatencyTarget = time.Millisecond
)

// cpuMeter is the recent CPU use of each scope's MPC sessions in one
// process. Its methods are safe for concurrent use.
type cpuMeter struct {
	mu      sync.Mutex
	max     float64 // GOMAXPROCS
	cores   float64 // the capacity the shares divide, within [max/20, max]
	now     func() time.Time
	latency func() (p90 time.Duration, ok bool) // scheduling latency since the last call
	sampled time.Time
	scopes  map[string]*cpuUse
}

// cpuUse is one scope's CPU charges.
type cpuUse struct {
	sum    float64   // core-seconds charged, decayed to at
	at     time.Time // when sum was last decayed
	active time.Time // when the scope last asked for a session (admitted or refused) or was charged
}

func newCPUMeter(cores float64) *cpuMeter {
	return &cpuMeter{max: cores, cores: cores, now: time.Now, latency: schedLatency(), scopes: map[string]*cpuUse{}}
}

// adapt updates the capacity from the scheduling latency, at most every
// cpuSampleEvery. m.mu must be held.
func (m *cpuMeter) adapt(now time.Time) {
	if now.Sub(m.sampled) < cpuSampleEvery {
		return
	}
	m.sampled = now
	p90, ok := m.latency()
	switch {
	case !ok:
	case p90 > cpuLatencyTarget:
		m.cores = max(m.cores*0.7, m.max/20)
	default:
		m.cores = min(m.cores+m.max/10, m.max)
	}
}

// schedLatency returns a function that reports the 90th percentile of the
// Go scheduler's latencies (runnable to running) since its last call, and
// false when there were none.
func schedLatency() func() (time.Duration, bool) {
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	var prev []uint64
	return func() (time.Duration, bool) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
			return 0, false
		}
		h := sample[0].Value.Float64Histogram()
		delta := make([]uint64, len(h.Counts))
		var n uint64
		for i, c := range h.Counts {
			if i < len(prev) {
				c -= prev[i]
			}
			delta[i] = c
			n += c
		}
		prev = append(prev[:0], h.Counts...)
		if n == 0 {
			return 0, false
		}
		var seen uint64
		for i, c := range delta {
			if seen += c; seen*10 >= n*9 {
				// Bucket i is [Buckets[i], Buckets[i+1]): its lower bound.
				return time.Duration(max(h.Buckets[i], 0) * 1e9), true
			}
		}
		return 0, false
	}
}

// use returns u's recent use in cores, decaying its sum to now.
func (u *cpuUse) use(now time.Time) float64 {
	if d := now.Sub(u.at); d > 0 {
		u.sum *= math.Exp2(-float64(d) / float64(cpuHalfLife))
		u.at = now
	}
	return u.sum * math.Ln2 / cpuHalfLife.Seconds()
}

// check reports whether a session of kind w would take scope over its
// share of the cores while other scopes are active, and if so how long
// until it would not, and why (for the client). With mark (a session asked for, not peeked),
// the scope counts as active from now, admitted or refused, and long-idle
// scopes are forgotten.
//
// A session of kind w is admitted while the scope's use plus half of the
// session's charge stays within its share (so that on average the scope
// uses its share), and always while its use is under half its share (so
// that a share smaller than one session still lets sessions run, one at
// a time). A key generation thus needs room under the share that a
// signature does not: a scope flooding with both gets its signatures
// first, and its key generations when its signatures leave room. That is
// on purpose: a key generation's rounds hold a core for tens of
// milliseconds at a time, and every one admitted showed in the other
// scopes' tail latency (BENCHMARKS.md) until the compute gate kept a core
// for the other scopes (gate.go).
func (m *cpuMeter) check(scope string, w work, mark bool) (after time.Duration, why string, over bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.adapt(now)
	me := m.scopes[scope]
	others := 0
	for id, u := range m.scopes {
		switch {
		case u == me:
		case now.Sub(u.active) < cpuActiveWindow:
			others++
		case mark && u.use(now) < 1e-3:
			delete(m.scopes, id)
		}
	}
	if mark {
		if me == nil {
			me = &cpuUse{at: now}
			m.scopes[scope] = me
		}
		me.active = now
	}
	if me == nil || others == 0 {
		return 0, "", false
	}
	share := m.cores / float64(others+1)
	use := me.use(now)
	half := cpuCost[w].Seconds() * math.Ln2 / cpuHalfLife.Seconds() / 2 // half the session's charge, in cores
	target := max(share-half, share/2)
	if use <= target {
		return 0, "", false
	}
	after = time.Duration(float64(cpuHalfLife) * math.Log2(use/target))
	why = fmt.Sprintf("scope %s is over its share of the CPU this node can give now (%d scopes active)", scope, others+1)
	return max(after, 10*time.Millisecond), why, true
}

// useOf returns scope's recent CPU use in cores (0 for a scope never
// charged).
func (m *cpuMeter) useOf(scope string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.scopes[scope]; u != nil {
		return u.use(m.now())
	}
	return 0
}

// charge adds a session of kind w to scope's use.
func (m *cpuMeter) charge(scope string, w work) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	u := m.scopes[scope]
	if u == nil {
		u = &cpuUse{at: now}
		m.scopes[scope] = u
	}
	u.use(now)
	u.sum += cpuCost[w].Seconds()
	u.active = now
}

// refund marks a session that did not run its MPC (a peer refused it as
// busy): its release charges nothing, so that a gateway's tries that its
// peers refuse do not count as CPU its scope used. Call it before release.
func (sl *slot) refund() {
	sl.s.mu.Lock()
	defer sl.s.mu.Unlock()
	sl.free = true
}
