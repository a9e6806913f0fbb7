package wallet

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/keymesh/keymesh/internal/transport"
)

// computeGate admits MPC compute steps (transport.Gate) to the process's
// cores (issue 16), at most one per core at a time, with two rules for
// when several scopes want them:
//
//   - A scope never holds every core while another scope has stepped
//     within cpuActiveWindow: it runs at most cores−1 steps at once (at
//     least one). A key generation's step holds a core for tens of
//     milliseconds; without the reserve, a quiet scope's signature step
//     waited for one of them to end (its p99 under a key generation flood
//     was 11× its quiet p99 on 2 cores, BENCHMARKS.md). With it, the
//     quiet scope's step finds a core at once.
//   - A freed core goes to the waiting step whose scope used the least
//     CPU lately (the scheduler's meter, schedule_cpu.go), then the
//     oldest.
//
// The meter's shares decide how many sessions a scope may run; the gate
// decides whose step runs next once they run. A step holds no lock and does
// no I/O while it runs, so the gate cannot deadlock; a scope alone is
// served in arrival order and may use every core.
//
// One gate serves the whole process (processGate): the cores are the
// process's, and keymesh dev and the tests run several nodes in one.
type computeGate struct {
	mu      sync.Mutex
	cores   int
	running int
	held    map[string]int // running steps by scope
	seq     uint64
	waiting []*gateWaiter
	now     func() time.Time
	// The two scopes that stepped last, most recent first, and when:
	// enough to tell whether a scope other than a given one stepped
	// within the window.
	last     [2]string
	lastSeen [2]time.Time
}

type gateWaiter struct {
	scope   string
	prio    float64 // the scope's recent CPU use, in cores, when it asked
	seq     uint64
	ready   chan struct{}
	granted bool
}

var processGate = newComputeGate(runtime.GOMAXPROCS(0))

func newComputeGate(cores int) *computeGate {
	return &computeGate{cores: cores, held: map[string]int{}, now: time.Now}
}

// enter waits for a core for a step of scope, whose recent use is prio.
func (g *computeGate) enter(ctx context.Context, scope string, prio float64) (exit func(), err error) {
	g.mu.Lock()
	g.seen(scope)
	g.seq++
	w := &gateWaiter{scope: scope, prio: prio, seq: g.seq, ready: make(chan struct{})}
	g.waiting = append(g.waiting, w)
	g.dispatch()
	g.mu.Unlock()
	exit = func() { g.exit(scope) }
	select {
	case <-w.ready:
		return exit, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if w.granted {
			g.release(scope) // granted as ctx ended: pass the core on
			return nil, ctx.Err()
		}
		for i, x := range g.waiting {
			if x == w {
				g.waiting = append(g.waiting[:i], g.waiting[i+1:]...)
				break
			}
		}
		return nil, ctx.Err()
	}
}

func (g *computeGate) exit(scope string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release(scope)
}

// release frees scope's core and hands cores on. g.mu must be held.
func (g *computeGate) release(scope string) {
	g.running--
	if g.held[scope]--; g.held[scope] <= 0 {
		delete(g.held, scope)
	}
	g.dispatch()
}

// seen records that scope asked for a core now. g.mu must be held.
func (g *computeGate) seen(scope string) {
	now := g.now()
	if g.last[0] != scope {
		g.last[1], g.lastSeen[1] = g.last[0], g.lastSeen[0]
		g.last[0] = scope
	}
	g.lastSeen[0] = now
}

// limit is how many steps scope may run at once now. g.mu must be held.
func (g *computeGate) limit(scope string, now time.Time) int {
	other := g.lastSeen[0]
	if g.last[0] == scope {
		other = g.lastSeen[1]
	}
	if other.IsZero() || now.Sub(other) >= cpuActiveWindow {
		return g.cores // alone
	}
	return max(1, g.cores-1)
}

// dispatch grants free cores to waiters, lowest priority value (then the
// oldest) first, skipping those whose scope is at its limit. g.mu must be
// held.
func (g *computeGate) dispatch() {
	now := g.now()
	for g.running < g.cores {
		best := -1
		for i, w := range g.waiting {
			if g.held[w.scope] >= g.limit(w.scope, now) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			if b := g.waiting[best]; w.prio < b.prio || w.prio == b.prio && w.seq < b.seq {
				best = i
			}
		}
		if best < 0 {
			return
		}
		w := g.waiting[best]
		g.waiting = append(g.waiting[:best], g.waiting[best+1:]...)
		g.running++
		g.held[w.scope]++
		w.granted = true
		close(w.ready)
	}
}

// scopeGate is the transport.Gate of one scope's sessions on one node.
type scopeGate struct {
	g     *computeGate
	meter *cpuMeter
	scope string
}

func (sg scopeGate) Enter(ctx context.Context) (func(), error) {
	return sg.g.enter(ctx, sg.scope, sg.meter.useOf(sg.scope))
}

// gated returns ctx whose MPC sessions' steps go through the process's
// gate as scope's.
func (s *Service) gated(ctx context.Context, scope string) context.Context {
	return transport.WithGate(ctx, scopeGate{g: processGate, meter: s.sched.cpu, scope: scope})
}
