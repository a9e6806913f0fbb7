package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nearestRank is the reference percentile: the ⌈q·n⌉-th smallest value.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	r = max(r, 1)
	return sorted[r-1]
}

// checkQuantiles compares h's percentiles with the sorted reference: never
// below it, and at most 2^-subBits above it (plus 1 ns for tiny values).
func checkQuantiles(t *testing.T, h *Histogram, vals []time.Duration) {
	t.Helper()
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		want := nearestRank(sorted, q)
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/subCount+1 {
			t.Errorf("q=%v: got %v, want %v (n=%d)", q, got, want, len(vals))
		}
	}
	if h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] {
		t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d, want %d", h.Count(), len(vals))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform-ms":  func() time.Duration { return time.Duration(rng.Int64N(int64(50 * time.Millisecond))) },
		"exponential": func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(10*time.Millisecond)) },
		"tiny":        func() time.Duration { return time.Duration(rng.Int64N(300)) },
		"wide":        func() time.Duration { return time.Duration(rng.Int64N(1 << 40)) },
		"constant":    func() time.Duration { return 15 * time.Millisecond },
	}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 100, 10000} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				var h Histogram
				vals := make([]time.Duration, n)
				for i := range vals {
					vals[i] = gen()
					h.Record(vals[i])
				}
				checkQuantiles(t, &h, vals)
			})
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var parts [4]Histogram
	var all []time.Duration
	for i := range 5000 {
		v := time.Duration(rng.Int64N(int64(time.Second)))
		parts[i%len(parts)].Record(v)
		all = append(all, v)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	h.Merge(new(Histogram)) // empty: no effect
	checkQuantiles(t, &h, all)
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lies within its bucket's bounds, and buckets are ordered.
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 1<<20 + 1, 1<<62 + 12345, math.MaxInt64} {
		i := bucket(v)
		if i < prev {
			t.Fatalf("bucket(%d)=%d before previous %d", v, i, prev)
		}
		prev = i
		if upper(i) < v {
			t.Errorf("upper(bucket(%d)) = %d < value", v, upper(i))
		}
		if i > 0 && upper(i-1) >= v {
			t.Errorf("upper(bucket(%d)-1) = %d ≥ value", v, upper(i-1))
		}
	}
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-5)
	if h.Max() != 0 || h.Count() != 1 {
		t.Fatal("negative duration not recorded as zero")
	}
}

func TestRunCount(t *testing.T) {
	for _, c := range []int{1, 3, 32} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			const n = 1000
			seen := make([]atomic.Int32, n)
			var inflight, peak atomic.Int32
			res, err := Run(context.Background(), Options{Concurrency: c, Requests: n}, func(ctx context.Context, i int) error {
				cur := inflight.Add(1)
				defer inflight.Add(-1)
				for {
					p := peak.Load()
					if cur <= p || peak.CompareAndSwap(p, cur) {
						break
					}
				}
				seen[i].Add(1)
				if i%10 == 0 {
					time.Sleep(100 * time.Microsecond) // let workers overlap
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range seen {
				if v := seen[i].Load(); v != 1 {
					t.Fatalf("request %d ran %d times", i, v)
				}
			}
			if res.Requests != n || res.OK != n || res.Failed() != 0 || len(res.Errors) != 0 || res.Interrupted {
				t.Fatalf("result %+v", res)
			}
			if res.Latency.Count() != n {
				t.Fatalf("histogram holds %d latencies, want %d", res.Latency.Count(), n)
			}
			if p := peak.Load(); p > int32(c) {
				t.Fatalf("%d requests in flight with concurrency %d", p, c)
			}
			if res.Throughput() <= 0 {
				t.Fatal("no throughput")
			}
		})
	}
}

var (
	errRefused = errors.New("refused")
	errBadSig  = errors.New("bad signature")
)

func TestRunErrorsByKind(t *testing.T) {
	const n = 600
	classify := func(err error) string {
		switch {
		case errors.Is(err, errRefused):
			return "refused"
		case errors.Is(err, errBadSig):
			return "bad signature"
		}
		return DefaultClassify(err)
	}
	res, err := Run(context.Background(), Options{Concurrency: 8, Requests: n, Classify: classify, Timeout: 20 * time.Millisecond},
		func(ctx context.Context, i int) error {
			switch {
			case i%3 == 0:
				return fmt.Errorf("wrapped: %w", errRefused)
			case i%5 == 0:
				return errBadSig
			case i%7 == 0:
				<-ctx.Done() // exceeds the per-request timeout
				return ctx.Err()
			case i%11 == 0:
				return errors.New("something else")
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	ok := 0
	for i := range n {
		switch {
		case i%3 == 0:
			want["refused"]++
		case i%5 == 0:
			want["bad signature"]++
		case i%7 == 0:
			want["timeout"]++
		case i%11 == 0:
			want["error"]++
		default:
			ok++
		}
	}
	if !mapsEqual(res.Errors, want) || res.OK != ok || res.Requests != n {
		t.Fatalf("errors %v ok %d, want %v ok %d", res.Errors, res.OK, want, ok)
	}
	if res.Latency.Count() != uint64(ok) {
		t.Fatalf("histogram holds %d, want only the %d successes", res.Latency.Count(), ok)
	}
	kinds := res.ErrorKinds()
	if kinds[0] != "refused" {
		t.Fatalf("kinds not sorted by count: %v", kinds)
	}
	var out bytes.Buffer
	if err := res.WriteSummary(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%d × refused", want["refused"]), fmt.Sprintf("%d × timeout", want["timeout"]), "p50 ", "p99 "} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, out.String())
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// fakeClock is a clock that only the workload moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRunPercentiles measures a workload whose latencies are known exactly
// (one worker, a clock that only the workload advances) and compares the
// driver's percentiles with a sorted reference.
func TestRunPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 2000
	lat := make([]time.Duration, n)
	for i := range lat {
		lat[i] = time.Duration(rng.ExpFloat64()*float64(12*time.Millisecond)) + time.Millisecond
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	res, err := Run(context.Background(), Options{Concurrency: 1, Requests: n, now: clk.now}, func(ctx context.Context, i int) error {
		clk.advance(lat[i])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkQuantiles(t, &res.Latency, lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	if res.Elapsed != sum {
		t.Fatalf("elapsed %v, want %v", res.Elapsed, sum)
	}
	if got, want := res.Throughput(), float64(n)/sum.Seconds(); math.Abs(got-want) > 1e-9*want {
		t.Fatalf("throughput %v, want %v", got, want)
	}
}

func TestRunDuration(t *testing.T) {
	const d = 300 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	t0 := time.Now()
	res, err := Run(context.Background(), Options{Concurrency: 4, Duration: d}, func(ctx context.Context, i int) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed < d {
		t.Fatalf("stopped after %v, before %v", res.Elapsed, d)
	}
	for _, s := range starts {
		if s.Sub(t0) > d+50*time.Millisecond {
			t.Fatalf("a request started %v after the start, past D=%v", s.Sub(t0), d)
		}
	}
	if res.Requests != len(starts) || res.OK != len(starts) || res.Requests < 4 || res.Interrupted {
		t.Fatalf("result %d requests (%d ok), %d started, interrupted %v", res.Requests, res.OK, len(starts), res.Interrupted)
	}
}

// TestRunDurationFake stops by D on a fake clock: exactly the requests that
// start before D run, the one that crosses D completes and counts.
func TestRunDurationFake(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	res, err := Run(context.Background(), Options{Concurrency: 1, Duration: 100 * time.Millisecond, now: clk.now}, func(ctx context.Context, i int) error {
		clk.advance(30 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Requests start at 0, 30, 60 and 90 ms; the next would start at 120.
	if res.Requests != 4 || res.Elapsed != 120*time.Millisecond {
		t.Fatalf("%d requests in %v, want 4 in 120ms", res.Requests, res.Elapsed)
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	res, err := Run(ctx, Options{Concurrency: 4, Requests: 1_000_000}, func(ctx context.Context, i int) error {
		if started.Add(1) == 100 {
			cancel()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Requests >= 1_000_000 || res.Requests != int(started.Load()) {
		t.Fatalf("interrupted %v, %d requests, %d started", res.Interrupted, res.Requests, started.Load())
	}
	if res.Errors["canceled"] == 0 {
		t.Fatalf("requests in flight at the interrupt not counted as canceled: %v", res.Errors)
	}
}

func TestRunBadOptions(t *testing.T) {
	fn := func(context.Context, int) error { return nil }
	for name, o := range map[string]Options{
		"no concurrency": {Requests: 1},
		"neither":        {Concurrency: 1},
		"both":           {Concurrency: 1, Requests: 1, Duration: time.Second},
		"negative":       {Concurrency: 1, Requests: -1},
	} {
		if _, err := Run(context.Background(), o, fn); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Run(context.Background(), Options{Concurrency: 1, Requests: 1}, nil); err == nil {
		t.Error("nil workload: no error")
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgress(t *testing.T) {
	work := func(ctx context.Context, i int) error {
		time.Sleep(time.Millisecond)
		return nil
	}
	t.Run("lines", func(t *testing.T) {
		var out syncBuffer
		_, err := Run(context.Background(), Options{Concurrency: 2, Requests: 100, Progress: &out, ProgressEvery: 10 * time.Millisecond}, work)
		if err != nil {
			t.Fatal(err)
		}
		s := out.String()
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		if len(lines) < 2 || strings.Contains(s, "\r") {
			t.Fatalf("want several plain lines, got %q", s)
		}
		if last := lines[len(lines)-1]; !strings.Contains(last, "100/100 100%") || !strings.HasPrefix(last, "["+strings.Repeat("=", barWidth)+"]") {
			t.Fatalf("last line %q", last)
		}
	})
	t.Run("tty", func(t *testing.T) {
		var out syncBuffer
		_, err := Run(context.Background(), Options{Concurrency: 2, Duration: 100 * time.Millisecond, Progress: &out, TTY: true, ProgressEvery: 10 * time.Millisecond}, work)
		if err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if strings.Count(s, "\r") < 2 || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
			t.Fatalf("want redraws and one final newline, got %q", s)
		}
	})
}
