package wallet

import (
	"context"
	"testing"
	"time"
)

// TestComputeGate: the gate admits one step per core; a freed core goes to
// the waiting step of the scope that used the least CPU, then the oldest;
// a waiter whose context ends leaves the queue, and one granted as it ends
// passes its core on.
func TestComputeGate(t *testing.T) {
	g := newComputeGate(1)
	ctx := context.Background()
	exit, err := g.enter(ctx, "noisy", 5)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	wait := func(name string, prio float64) {
		go func() {
			x, err := g.enter(ctx, name, prio)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			x()
		}()
	}
	waiters := func(n int) {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			g.mu.Lock()
			k := len(g.waiting)
			g.mu.Unlock()
			if k == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters, want %d", k, n)
			}
		}
	}
	wait("noisy", 1.5)
	waiters(1)
	wait("quiet", 0.01)
	waiters(2)
	wait("noisy again", 1.5)
	waiters(3)
	// A waiter that gives up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, err := g.enter(cctx, "gone", 0); done <- err }()
	waiters(4)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled waiter was admitted")
	}
	waiters(3)
	exit()
	for _, want := range []string{"quiet", "noisy", "noisy again"} {
		if got := <-order; got != want {
			t.Fatalf("admitted %s, want %s", got, want)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		running, k := g.running, len(g.waiting)
		g.mu.Unlock()
		if running == 0 && k == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after all exits: %d running, %d waiting", running, k)
		}
	}
}

// TestComputeGateReserve: a scope alone may run a step on every core, but
// while another scope has stepped within cpuActiveWindow it runs at most
// cores−1, so that the other scope's step finds a core at once instead of
// waiting behind a long key generation step (issue 16).
func TestComputeGateReserve(t *testing.T) {
	clk := time.Unix(1_000_000, 0)
	g := newComputeGate(2)
	g.now = func() time.Time { return clk }
	ctx := context.Background()
	try := func(scope string) (func(), bool) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		exit, err := g.enter(c, scope, 1)
		return exit, err == nil
	}

	// Alone, the noisy scope takes both cores.
	a1, ok1 := try("noisy")
	a2, ok2 := try("noisy")
	if !ok1 || !ok2 {
		t.Fatal("a scope alone did not get both cores")
	}
	a2()
	// The quiet scope steps: from now on the noisy one keeps a core free.
	q, ok := try("quiet")
	if !ok {
		t.Fatal("the quiet scope found no core free")
	}
	q()
	if _, ok := try("noisy"); ok {
		t.Fatal("the noisy scope took the last core while the quiet scope is active")
	}
	// The quiet scope gets the reserved core at once, however many noisy
	// steps wait for it.
	noisyIn := make(chan func(), 4)
	for range 4 {
		go func() {
			if exit, err := g.enter(ctx, "noisy", 1); err == nil {
				noisyIn <- exit
			}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		k := len(g.waiting)
		g.mu.Unlock()
		if k == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d noisy waiters, want 4", k)
		}
	}
	q, ok = try("quiet")
	if !ok {
		t.Fatal("the quiet scope waited behind the noisy scope's queue")
	}
	q()
	select {
	case <-noisyIn:
		t.Fatal("a noisy step took the reserved core")
	case <-time.After(20 * time.Millisecond):
	}
	// The noisy scope's running step ends: one waiter takes its core.
	a1()
	exit := <-noisyIn
	// After cpuActiveWindow without the quiet scope, the noisy scope is
	// alone again and a second waiter gets the other core.
	g.mu.Lock()
	clk = clk.Add(cpuActiveWindow)
	g.dispatch()
	g.mu.Unlock()
	select {
	case exit2 := <-noisyIn:
		exit2()
	case <-time.After(5 * time.Second):
		t.Fatal("the noisy scope, alone again, did not get the second core")
	}
	exit()
	for range 2 {
		(<-noisyIn)()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || len(g.held) != 0 || len(g.waiting) != 0 {
		t.Fatalf("after all exits: %d running, held %v, %d waiting", g.running, g.held, len(g.waiting))
	}
}
