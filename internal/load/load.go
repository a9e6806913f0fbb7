// Package load drives a workload with C concurrent workers for a number of
// requests N or a duration D and measures it: a latency histogram
// (p50/p90/p99/max to within 0.8%), throughput, and errors counted by kind.
// It is generic: a request is any func the caller supplies (`keymesh bench
// sign` passes one that signs through the real API and verifies the
// signature), so the driver is tested with a fake workload alone.
//
// Only requests that succeed enter the latency histogram; failed ones are
// counted by the kind the caller's Classify gives them. With N, exactly N
// requests are started (none lost: OK plus errors is N unless the run is
// interrupted). With D, no request starts after D has passed; requests in
// flight at D run to completion and count.
//
// While it runs, Run draws progress on Options.Progress: a bar redrawn in
// place when it is a terminal, a line every ProgressEvery otherwise (logs,
// CI). Library code here never logs.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Func runs one request. i is the request's index, 0, 1, 2… in the order
// requests are started (unique across workers). A non-nil error counts the
// request as failed, under the kind Options.Classify gives it.
type Func func(ctx context.Context, i int) error

// Options configure Run. Exactly one of Requests and Duration must be set.
type Options struct {
	// Concurrency is the number of workers, each running one request at a
	// time (C). It must be ≥ 1.
	Concurrency int
	// Requests stops the run after this many requests (N).
	Requests int
	// Duration stops starting requests after this long (D).
	Duration time.Duration
	// Timeout, if set, bounds each request (its context's deadline).
	Timeout time.Duration
	// Rate, if set, starts requests at this many a second whether or not
	// earlier ones have finished (an open loop, as independent users
	// send), request i at i/Rate after the start; Concurrency then bounds
	// the requests in flight, and a start that finds Concurrency in
	// flight waits for one to finish (it counts late). Without Rate each
	// of the Concurrency workers starts its next request when its last
	// one ends (a closed loop).
	Rate float64
	// Classify names the kind of a failed request's error. Nil uses
	// DefaultClassify.
	Classify func(error) string

	// Progress receives the progress display; nil draws none.
	Progress io.Writer
	// TTY redraws one line in place (\r) instead of printing a line every
	// ProgressEvery.
	TTY bool
	// ProgressEvery is the interval between progress updates: default
	// 100 ms with TTY, 5 s without.
	ProgressEvery time.Duration

	// now replaces time.Now in tests.
	now func() time.Time
}

// Result is what a run measured.
type Result struct {
	Concurrency int
	// Requests is the number of requests that completed, OK plus failed.
	Requests int
	// OK is the number of requests that returned nil.
	OK int
	// Errors counts failed requests by kind.
	Errors map[string]int
	// Elapsed runs from the start to the end of the last request.
	Elapsed time.Duration
	// Latency holds the latencies of the successful requests.
	Latency Histogram
	// Interrupted is set when ctx ended before the run was complete.
	Interrupted bool
}

// Throughput is successful requests per second of elapsed time.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Failed is the number of failed requests.
func (r *Result) Failed() int { return r.Requests - r.OK }

// ErrorKinds returns the kinds in Errors, most frequent first (ties by
// name), for stable output.
func (r *Result) ErrorKinds() []string {
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(a, b int) bool {
		ca, cb := r.Errors[kinds[a]], r.Errors[kinds[b]]
		if ca != cb {
			return ca > cb
		}
		return kinds[a] < kinds[b]
	})
	return kinds
}

// WriteSummary prints the result as a few aligned lines, e.g.
//
//	requests     1000 (1000 ok, 0 failed) in 5.21s, concurrency 32
//	throughput   191.9 req/s
//	latency      p50 160.2ms  p90 201.5ms  p99 260.1ms  max 301.0ms  (mean 165.0ms)
//	errors       none
func (r *Result) WriteSummary(w io.Writer) error {
	var b []byte
	b = fmt.Appendf(b, "requests     %d (%d ok, %d failed) in %s, concurrency %d\n",
		r.Requests, r.OK, r.Failed(), r.Elapsed.Round(time.Millisecond), r.Concurrency)
	if r.Interrupted {
		b = fmt.Appendf(b, "             interrupted before the end\n")
	}
	b = fmt.Appendf(b, "throughput   %.1f req/s\n", r.Throughput())
	if r.Latency.Count() > 0 {
		b = fmt.Appendf(b, "latency      p50 %s  p90 %s  p99 %s  max %s  (mean %s)\n",
			ms(r.Latency.Quantile(0.50)), ms(r.Latency.Quantile(0.90)), ms(r.Latency.Quantile(0.99)),
			ms(r.Latency.Max()), ms(r.Latency.Mean()))
	} else {
		b = fmt.Appendf(b, "latency      no successful request\n")
	}
	if len(r.Errors) == 0 {
		b = fmt.Appendf(b, "errors       none\n")
	} else {
		for i, k := range r.ErrorKinds() {
			label := "errors"
			if i > 0 {
				label = ""
			}
			b = fmt.Appendf(b, "%-12s %d × %s\n", label, r.Errors[k], k)
		}
	}
	_, err := w.Write(b)
	return err
}

// ms formats d in milliseconds with 0.1 ms resolution.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// DefaultClassify names context errors "timeout" and "canceled" and every
// other error "error".
func DefaultClassify(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

// worker is one worker's private tally, merged when the run ends.
type worker struct {
	hist   Histogram
	ok     int
	errors map[string]int
}

// do runs request i (within timeout, if positive) and tallies it; done
// and failed count every worker's requests.
func (st *worker) do(ctx context.Context, timeout time.Duration, fn Func, i int, now func() time.Time,
	classify func(error) string, done, failed *atomic.Int64) {
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, timeout)
	}
	t0 := now()
	err := fn(rctx, i)
	lat := now().Sub(t0)
	cancel()
	if err == nil {
		st.ok++
		st.hist.Record(lat)
	} else {
		st.errors[classify(err)]++
		failed.Add(1)
	}
	done.Add(1)
}

// Run drives fn as opts say and returns what it measured. It returns an
// error only for invalid options; failed requests are in the Result. When
// ctx ends, Run stops starting requests, cancels those in flight, and
// returns the partial result with Interrupted set.
func Run(ctx context.Context, opts Options, fn Func) (*Result, error) {
	switch {
	case opts.Concurrency < 1:
		return nil, errors.New("load: concurrency must be at least 1")
	case opts.Requests < 0 || opts.Duration < 0 || opts.Timeout < 0:
		return nil, errors.New("load: requests, duration and timeout must not be negative")
	case (opts.Requests == 0) == (opts.Duration == 0):
		return nil, errors.New("load: set exactly one of a number of requests and a duration")
	case fn == nil:
		return nil, errors.New("load: no workload")
	case opts.Rate < 0:
		return nil, errors.New("load: rate must not be negative")
	}
	now := opts.now
	if now == nil {
		now = time.Now
	}
	classify := opts.Classify
	if classify == nil {
		classify = DefaultClassify
	}

	var (
		next     atomic.Int64 // index of the next request to start
		done     atomic.Int64 // completed requests
		failed   atomic.Int64 // failed requests
		stopped  atomic.Bool  // ctx ended before the run was complete
		start    = now()
		deadline time.Time
	)
	if opts.Duration > 0 {
		deadline = start.Add(opts.Duration)
	}
	// claim returns the index of the next request to start, or false when
	// the run is over.
	claim := func() (int, bool) {
		if opts.Requests > 0 && next.Load() >= int64(opts.Requests) {
			return 0, false
		}
		if opts.Duration > 0 && !now().Before(deadline) {
			return 0, false
		}
		if ctx.Err() != nil {
			stopped.Store(true)
			return 0, false
		}
		i := next.Add(1) - 1
		if opts.Requests > 0 && i >= int64(opts.Requests) {
			return 0, false
		}
		return int(i), true
	}

	var prog *progress
	if opts.Progress != nil {
		prog = newProgress(opts, start, now, &done, &failed)
		prog.start()
	}

	workers := make([]worker, opts.Concurrency)
	var wg sync.WaitGroup
	if opts.Rate > 0 {
		runOpen(ctx, opts, fn, claim, start, now, classify, workers, &done, &failed)
	}
	for w := range workers {
		if opts.Rate > 0 {
			break
		}
		wg.Add(1)
		go func(st *worker) {
			defer wg.Done()
			st.errors = make(map[string]int)
			for {
				i, ok := claim()
				if !ok {
					return
				}
				st.do(ctx, opts.Timeout, fn, i, now, classify, &done, &failed)
			}
		}(&workers[w])
	}
	wg.Wait()
	elapsed := now().Sub(start)
	if prog != nil {
		prog.stop()
	}

	res := &Result{Concurrency: opts.Concurrency, Errors: make(map[string]int), Elapsed: elapsed}
	for i := range workers {
		st := &workers[i]
		res.OK += st.ok
		res.Requests += st.ok
		for k, c := range st.errors {
			res.Errors[k] += c
			res.Requests += c
		}
		res.Latency.Merge(&st.hist)
	}
	res.Interrupted = stopped.Load()
	return res, nil
}

// runOpen is Run's open loop (Options.Rate): one dispatcher starts request
// i at start + i/Rate, each in its own goroutine, at most Concurrency in
// flight; workers[k] is the tally of the k-th slot.
func runOpen(ctx context.Context, opts Options, fn Func, claim func() (int, bool), start time.Time, now func() time.Time,
	classify func(error) string, workers []worker, done, failed *atomic.Int64) {
	slots := make(chan int, len(workers))
	for k := range workers {
		workers[k].errors = make(map[string]int)
		slots <- k
	}
	var wg sync.WaitGroup
	for {
		i, ok := claim()
		if !ok {
			break
		}
		if d := start.Add(time.Duration(float64(i) / opts.Rate * float64(time.Second))).Sub(now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		var k int
		select {
		case k = <-slots:
		case <-ctx.Done():
			continue // claim sees ctx ended
		}
		wg.Go(func() {
			defer func() { slots <- k }()
			st := &workers[k]
			st.do(ctx, opts.Timeout, fn, i, now, classify, done, failed)
		})
	}
	wg.Wait()
}
