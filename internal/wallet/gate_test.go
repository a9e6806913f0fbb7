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
	g := &computeGate{free: 1}
	ctx := context.Background()
	exit, err := g.enter(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	wait := func(name string, prio float64) {
		go func() {
			x, err := g.enter(ctx, prio)
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
	go func() { _, err := g.enter(cctx, 0); done <- err }()
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
		free, k := g.free, len(g.waiting)
		g.mu.Unlock()
		if free == 1 && k == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after all exits: %d free, %d waiting", free, k)
		}
	}
}
