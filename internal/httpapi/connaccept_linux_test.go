package httpapi

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestTarpitHoldsAndResets: the pool holds up to its size, resets the
// oldest to make room, resets those held longer than the hold time, and
// release resets the rest.
func TestTarpitHoldsAndResets(t *testing.T) {
	type pair struct{ held, peer int }
	newPair := func() pair {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.SetNonblock(fds[1], true)
		t.Cleanup(func() { syscall.Close(fds[1]) })
		return pair{fds[0], fds[1]}
	}
	// closed reports whether p's held end was closed (its peer reads EOF).
	closed := func(p pair) bool {
		n, err := syscall.Read(p.peer, make([]byte, 1))
		return n == 0 && err == nil
	}
	var budget atomic.Int64
	budget.Store(100)
	pit := newTarpit(2, time.Second, &budget)
	now := time.Unix(1000, 0)
	a, b, c := newPair(), newPair(), newPair()
	pit.hold(a.held, now)
	pit.hold(b.held, now.Add(100*time.Millisecond))
	if closed(a) || closed(b) || pit.held() != 2 {
		t.Fatal("held connections closed early")
	}
	pit.hold(c.held, now.Add(200*time.Millisecond)) // full: a goes
	if !closed(a) || closed(b) || closed(c) {
		t.Fatal("a full pool did not reset its oldest only")
	}
	d := newPair()
	pit.hold(d.held, now.Add(1150*time.Millisecond)) // b held > 1 s: expires
	if !closed(b) || closed(c) || closed(d) || pit.held() != 2 {
		t.Fatalf("expiry: b closed %v, c %v, d %v, held %d", closed(b), closed(c), closed(d), pit.held())
	}
	pit.release()
	if !closed(c) || !closed(d) || pit.held() != 0 || budget.Load() != 100 {
		t.Fatalf("release left connections held, budget %d", budget.Load())
	}
	e := newPair()
	newTarpit(0, time.Second, &budget).hold(e.held, now)
	if !closed(e) || budget.Load() != 100 {
		t.Fatal("an empty pool held a connection")
	}
	// Two pools sharing a budget of 1: the second holds nothing while
	// the first holds one; a pool past the budget gives up its own oldest.
	budget.Store(1)
	p1, p2 := newTarpit(4, time.Second, &budget), newTarpit(4, time.Second, &budget)
	f, g, h := newPair(), newPair(), newPair()
	p1.hold(f.held, now)
	p2.hold(g.held, now)
	if closed(f) || !closed(g) || budget.Load() != 0 {
		t.Fatal("a pool held past the shared budget")
	}
	p1.hold(h.held, now)
	if !closed(f) || closed(h) || p1.held() != 1 {
		t.Fatal("a pool at the budget did not give up its oldest")
	}
	p1.release()
	if budget.Load() != 1 {
		t.Fatalf("budget %d after release", budget.Load())
	}
}
