package load

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenLoop: with Rate, request i never starts before i/Rate after the
// start, at most Concurrency are in flight, and every request runs once.
func TestOpenLoop(t *testing.T) {
	const n, rate = 20, 1000.0
	var inFlight, most atomic.Int64
	var mu sync.Mutex
	started := map[int]time.Time{}
	t0 := time.Now()
	res, err := Run(context.Background(), Options{Concurrency: 2, Requests: n, Rate: rate}, func(ctx context.Context, i int) error {
		now := time.Now()
		mu.Lock()
		if _, dup := started[i]; dup {
			t.Errorf("request %d ran twice", i)
		}
		started[i] = now
		mu.Unlock()
		c := inFlight.Add(1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != n || res.Requests != n || len(started) != n {
		t.Fatalf("ok %d, requests %d, started %d; want %d", res.OK, res.Requests, len(started), n)
	}
	if most.Load() > 2 {
		t.Fatalf("%d requests in flight with Concurrency 2", most.Load())
	}
	for i, at := range started {
		if early := t0.Add(time.Duration(float64(i) / rate * float64(time.Second))).Sub(at); early > time.Millisecond {
			t.Errorf("request %d started %v before its time", i, early)
		}
	}
	if _, err := Run(context.Background(), Options{Concurrency: 1, Requests: 1, Rate: -1}, func(context.Context, int) error { return nil }); err == nil {
		t.Error("a negative rate was accepted")
	}
}
