package wallet

import (
	"context"
	"runtime"
	"sync"

	"github.com/keymesh/keymesh/internal/transport"
)

// computeGate admits MPC compute steps (transport.Gate) to the process's
// cores, at most one per core at a time, and when steps wait, it admits
// first the one whose scope used the least CPU lately (the scheduler's
// meter, schedule_cpu.go), then the oldest (issue 16). The meter's shares
// decide how many sessions a scope may run; the gate decides whose step
// runs next once they run: a quiet scope's signature step waits for one
// step to end, not for every runnable step of a flooding scope. A step
// holds no lock and does no I/O while it runs, so the gate cannot
// deadlock; a scope alone is served in arrival order.
//
// One gate serves the whole process (processGate): the cores are the
// process's, and keymesh dev and the tests run several nodes in one.
type computeGate struct {
	mu      sync.Mutex
	free    int
	seq     uint64
	waiting []*gateWaiter
}

type gateWaiter struct {
	prio    float64 // the scope's recent CPU use, in cores, when it asked
	seq     uint64
	ready   chan struct{}
	granted bool
}

var processGate = &computeGate{free: runtime.GOMAXPROCS(0)}

// enter waits for a core for a step whose scope's recent use is prio.
func (g *computeGate) enter(ctx context.Context, prio float64) (exit func(), err error) {
	g.mu.Lock()
	if g.free > 0 && len(g.waiting) == 0 {
		g.free--
		g.mu.Unlock()
		return g.exit, nil
	}
	g.seq++
	w := &gateWaiter{prio: prio, seq: g.seq, ready: make(chan struct{})}
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	select {
	case <-w.ready:
		return g.exit, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if w.granted {
			g.handOn() // granted as ctx ended: pass the core on
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

func (g *computeGate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handOn()
}

// handOn gives a freed core to the waiter with the lowest priority value
// (then the oldest), or keeps it free. g.mu must be held.
func (g *computeGate) handOn() {
	if len(g.waiting) == 0 {
		g.free++
		return
	}
	best := 0
	for i, w := range g.waiting[1:] {
		if b := g.waiting[best]; w.prio < b.prio || w.prio == b.prio && w.seq < b.seq {
			best = i + 1
		}
	}
	w := g.waiting[best]
	g.waiting = append(g.waiting[:best], g.waiting[best+1:]...)
	w.granted = true
	close(w.ready)
}

// scopeGate is the transport.Gate of one scope's sessions on one node.
type scopeGate struct {
	g     *computeGate
	meter *cpuMeter
	scope string
}

func (sg scopeGate) Enter(ctx context.Context) (func(), error) {
	return sg.g.enter(ctx, sg.meter.useOf(sg.scope))
}

// gated returns ctx whose MPC sessions' steps go through the process's
// gate as scope's.
func (s *Service) gated(ctx context.Context, scope string) context.Context {
	return transport.WithGate(ctx, scopeGate{g: processGate, meter: s.sched.cpu, scope: scope})
}
