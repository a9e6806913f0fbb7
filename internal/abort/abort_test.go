package abort

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTable: an abort cancels the run of the caller's own invitation only
// and tells when it has ended; one that comes first refuses the
// invitation; early aborts are bounded per peer and forgotten after
// Memory.
func TestTable(t *testing.T) {
	var tb Table
	run, cancel := context.WithCancel(context.Background())
	defer cancel()
	untrack, err := tb.Track(2, [32]byte{1}, cancel)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if done := tb.Abort(3, [32]byte{1}, now); done != nil || run.Err() != nil { // another gateway
		t.Fatal("aborted by another gateway")
	}
	if done := tb.Abort(2, [32]byte{2}, now); done != nil || run.Err() != nil { // another nonce
		t.Fatal("aborted by another nonce")
	}
	done := tb.Abort(2, [32]byte{1}, now)
	if done == nil || run.Err() == nil {
		t.Fatal("the gateway's abort did not stop its run")
	}
	select {
	case <-done:
		t.Fatal("done before the run ended")
	default:
	}
	untrack()
	untrack() // twice: nothing
	<-done
	// The abort of nonce 2 came first: its invitation is refused, once.
	if _, err := tb.Track(2, [32]byte{2}, func() {}); !errors.Is(err, ErrAborted) {
		t.Fatalf("an invitation aborted before it ran: %v", err)
	}
	if u, err := tb.Track(2, [32]byte{2}, func() {}); err != nil {
		t.Fatalf("the same invitation again, the abort spent: %v", err)
	} else {
		u()
	}
	// Bounded per peer; the old ones make room.
	for i := range MaxEarly + 10 {
		tb.Abort(4, [32]byte{byte(i), byte(i >> 8), 9}, now)
	}
	if n := tb.Early(4); n != MaxEarly {
		t.Fatalf("%d early aborts kept for one peer, want %d", n, MaxEarly)
	}
	tb.Abort(4, [32]byte{0xff, 0xff, 9}, now.Add(Memory+time.Second))
	if n := tb.Early(4); n != 1 {
		t.Fatalf("after Memory, %d early aborts kept, want the new one only", n)
	}
	if n := tb.Early(3); n != 1 {
		t.Fatalf("peer 3's early abort: %d", n)
	}
}
