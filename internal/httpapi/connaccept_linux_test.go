package httpapi

import (
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
	pit := newTarpit(2, time.Second)
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
	if !closed(c) || !closed(d) || pit.held() != 0 {
		t.Fatal("release left connections held")
	}
	e := newPair()
	newTarpit(0, time.Second).hold(e.held, now)
	if !closed(e) {
		t.Fatal("an empty pool held a connection")
	}
}
