package dkls23test

import (
	"errors"
	"sync"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// RunConcurrent runs the sessions like mpctest.Run without a rule, but each
// party in its own goroutine, as separate nodes would: its wall time is the
// protocol's latency on the machine's cores rather than the sum of every
// party's work. Messages are delivered in arrival order.
func RunConcurrent(sessions []*round.Session) *mpctest.Result {
	res := &mpctest.Result{
		Outputs: make(map[round.PartyID]any),
		Errors:  make(map[round.PartyID]error),
		Bytes:   make(map[round.PartyID]int),
	}
	inbox := make(map[round.PartyID]chan *round.Message, len(sessions))
	for _, s := range sessions {
		// Each party receives at most a few messages per round from each
		// peer; the buffer never fills.
		inbox[s.Self()] = make(chan *round.Message, 16*len(sessions)+16)
	}
	var (
		inflight sync.WaitGroup
		mu       sync.Mutex // guards res
	)
	post := func(from *round.Session, msgs []*round.Message) {
		n := 0
		for _, m := range msgs {
			var to []round.PartyID
			if m.IsBroadcast() {
				for _, p := range from.Parties() {
					if p != from.Self() {
						to = append(to, p)
					}
				}
			} else {
				to = []round.PartyID{m.To}
			}
			if b, err := m.MarshalBinary(); err == nil {
				n += len(b) * len(to)
			}
			for _, p := range to {
				if ch, ok := inbox[p]; ok {
					inflight.Add(1)
					ch <- m
				}
			}
		}
		mu.Lock()
		res.Bytes[from.Self()] += n
		mu.Unlock()
	}
	for _, s := range sessions {
		out, err := s.Start()
		if err != nil {
			res.Errors[s.Self()] = err
			continue
		}
		post(s, out)
	}
	var done sync.WaitGroup
	for _, s := range sessions {
		done.Add(1)
		go func() {
			defer done.Done()
			for m := range inbox[s.Self()] {
				out, err := s.Handle(m)
				if err == nil || !errors.Is(err, round.ErrDropped) {
					post(s, out)
				}
				mu.Lock()
				res.Delivered++
				if errors.Is(err, round.ErrDropped) {
					res.Dropped++
				}
				mu.Unlock()
				inflight.Done()
			}
		}()
	}
	inflight.Wait()
	for _, ch := range inbox {
		close(ch)
	}
	done.Wait()
	for _, s := range sessions {
		if _, ok := res.Errors[s.Self()]; ok {
			continue
		}
		if !s.Done() {
			res.Errors[s.Self()] = &mpctest.StallError{Round: s.Round(), Waiting: s.Waiting()}
			continue
		}
		out, err := s.Result()
		if err != nil {
			res.Errors[s.Self()] = err
			continue
		}
		res.Outputs[s.Self()] = out
	}
	return res
}
