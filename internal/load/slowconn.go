package load

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Slow connections (issue 16): the slowloris that `keymesh bench flood
// --slow-conns` runs against a node's API port while it probes /healthz.
// Each connection sends half a request header and then nothing, so the
// server holds it until it closes it (its header timeout, a connection
// cap, a tarpit). With Redial set, a connection the server closed is
// dialled again after Redial, as an attacker keeps up the pressure; each
// of those is a new connect, so a server that closes connections quickly
// turns the flood into a connection flood.

// SlowOptions configure HoldSlow.
type SlowOptions struct {
	// Addr is the server's host:port.
	Addr string
	// Conns is the number of connections to hold.
	Conns int
	// Sources are local IP addresses to dial from, in turn (several
	// addresses spread the flood over several client addresses); empty
	// dials from the system's choice.
	Sources []string
	// Redial, if positive, dials a connection again this long after the
	// server closed it; zero holds each connection once.
	Redial time.Duration
	// DialRate bounds the first dials, a second (default 20,000).
	DialRate float64
}

// Slow is a running flood of slow connections (HoldSlow).
type Slow struct {
	dialled, open, failed atomic.Int64
	stop                  context.CancelFunc
	wg                    sync.WaitGroup
}

// Dialled is the number of connections established so far, Open the
// number held now, Failed the dials that failed (refused, timed out, out
// of descriptors).
func (s *Slow) Dialled() int64 { return s.dialled.Load() }
func (s *Slow) Open() int64    { return s.open.Load() }
func (s *Slow) Failed() int64  { return s.failed.Load() }

// Stop closes every connection and waits for the flood to end.
func (s *Slow) Stop() {
	s.stop()
	s.wg.Wait()
}

// HoldSlow starts opts.Conns slow connections to opts.Addr and returns
// once each was dialled once (or ctx ended); they are held until Stop or
// ctx ends.
func HoldSlow(ctx context.Context, opts SlowOptions) (*Slow, error) {
	if opts.Conns <= 0 || opts.Addr == "" {
		return nil, errors.New("load: slow connections: an address and a positive count are needed")
	}
	if opts.DialRate <= 0 {
		opts.DialRate = 20_000
	}
	var dialers []*net.Dialer
	for _, src := range opts.Sources {
		ip := net.ParseIP(src)
		if ip == nil {
			return nil, errors.New("load: slow connections: source " + src + " is not an IP address")
		}
		dialers = append(dialers, &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second})
	}
	if len(dialers) == 0 {
		dialers = []*net.Dialer{{Timeout: 5 * time.Second}}
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Slow{stop: cancel}
	first := make(chan struct{}, opts.Conns)
	gap := time.Duration(float64(time.Second) / opts.DialRate)
	next := time.Now()
	for i := range opts.Conns {
		d := dialers[i%len(dialers)]
		s.wg.Go(func() { s.hold(ctx, d, opts.Addr, opts.Redial, first) })
		next = next.Add(gap)
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
	}
	for range opts.Conns {
		select {
		case <-first:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
	return s, nil
}

// hold keeps one slow connection, dialling again after redial when the
// server closes it; it reports its first dial on first.
func (s *Slow) hold(ctx context.Context, d *net.Dialer, addr string, redial time.Duration, first chan<- struct{}) {
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if first != nil {
			first <- struct{}{}
			first = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failed.Add(1)
		} else {
			s.dialled.Add(1)
			s.open.Add(1)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
			io.Copy(io.Discard, c) // until the server (or Stop) closes it
			stop()
			c.Close()
			s.open.Add(-1)
		}
		if redial <= 0 {
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(redial):
		}
	}
}
