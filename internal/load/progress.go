package load

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// barWidth is the number of cells in the progress bar.
const barWidth = 30

// progress draws the run's progress on a writer until stopped.
type progress struct {
	w      io.Writer
	tty    bool
	every  time.Duration
	total  int           // N, or 0 with a duration
	dur    time.Duration // D, or 0 with a number of requests
	t0     time.Time
	now    func() time.Time
	done   *atomic.Int64
	failed *atomic.Int64

	quit chan struct{}
	wg   sync.WaitGroup
}

func newProgress(opts Options, t0 time.Time, now func() time.Time, done, failed *atomic.Int64) *progress {
	every := opts.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
		if opts.TTY {
			every = 100 * time.Millisecond
		}
	}
	return &progress{
		w: opts.Progress, tty: opts.TTY, every: every,
		total: opts.Requests, dur: opts.Duration, t0: t0, now: now,
		done: done, failed: failed, quit: make(chan struct{}),
	}
}

func (p *progress) start() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-tick.C:
				p.draw(false)
			}
		}
	}()
}

// stop draws the final state and ends the line.
func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
	p.draw(true)
}

// draw writes one progress line: in a terminal it overwrites the previous
// one (\r, erase to end of line) and the final one ends with a newline;
// otherwise every line ends with a newline. Write errors are ignored: the
// display is best effort and must not stop the run.
func (p *progress) draw(final bool) {
	elapsed := p.now().Sub(p.t0)
	done, failed := p.done.Load(), p.failed.Load()
	var frac float64
	var count string
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
		count = fmt.Sprintf("%d/%d", done, p.total)
	} else {
		frac = float64(elapsed) / float64(p.dur)
		count = fmt.Sprintf("%d", done)
	}
	if final && frac < 1 && p.total == 0 {
		frac = 1
	}
	frac = min(max(frac, 0), 1)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-failed) / elapsed.Seconds()
	}
	line := fmt.Sprintf("%s %s %3.0f%%  %.1f ok/s  %d failed  %s",
		bar(frac), count, frac*100, rate, failed, elapsed.Round(100*time.Millisecond))
	if p.tty {
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// bar renders frac (0…1) as [=====>    ].
func bar(frac float64) string {
	full := int(frac * barWidth)
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", full))
	if full < barWidth {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", barWidth-full-1))
	}
	b.WriteByte(']')
	return b.String()
}
