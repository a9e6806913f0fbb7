// Package mpctest runs n parties of a round-based protocol in one process and
// lets a test alter, drop, delay, duplicate or replay any message on its way.
//
// It is the harness for adversarial tests (STYLE.md habit 10): a Rule sees
// every message once per recipient (a broadcast is copied per recipient, so a
// rule can make one inconsistent) and returns what is delivered instead.
// Delivery order is shuffled by a seeded source so that tests exercise
// out-of-order arrival and still reproduce.
package mpctest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Rule decides what happens to msg on its way to party to: return it
// (possibly altered, it is a private copy) to deliver it, nil to drop it,
// several messages to deliver them all.
type Rule func(to round.PartyID, msg *round.Message) []*round.Message

// Result is what each party ended with.
type Result struct {
	Outputs map[round.PartyID]any
	Errors  map[round.PartyID]error
	// Dropped counts messages the sessions ignored (replays, other
	// sessions, past rounds).
	Dropped int
	// Delivered counts messages handed to sessions.
	Delivered int
	// Bytes counts encoded bytes sent, per sender (after the rule).
	Bytes map[round.PartyID]int
}

// Err returns the first error in party order, or nil if every party
// succeeded.
func (r *Result) Err() error {
	ids := make([]round.PartyID, 0, len(r.Errors))
	for p := range r.Errors {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	for _, p := range ids {
		return fmt.Errorf("%v: %w", p, r.Errors[p])
	}
	return nil
}

// StallError is reported for a party whose session neither finished nor
// aborted when no message was left to deliver.
type StallError struct {
	Round   uint16
	Waiting []round.PartyID
}

func (e *StallError) Error() string {
	return fmt.Sprintf("mpctest: stalled in round %d waiting for %v", e.Round, e.Waiting)
}

type envelope struct {
	to  round.PartyID
	msg *round.Message
}

// Run starts every session and delivers messages until none is left. rule
// may be nil (deliver everything). seed fixes the delivery order.
func Run(sessions []*round.Session, rule Rule, seed uint64) *Result {
	res := &Result{
		Outputs: make(map[round.PartyID]any),
		Errors:  make(map[round.PartyID]error),
		Bytes:   make(map[round.PartyID]int),
	}
	byID := make(map[round.PartyID]*round.Session, len(sessions))
	for _, s := range sessions {
		byID[s.Self()] = s
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var queue []envelope
	post := func(from *round.Session, msgs []*round.Message) {
		for _, m := range msgs {
			var targets []round.PartyID
			if m.IsBroadcast() {
				for _, p := range from.Parties() {
					if p != from.Self() {
						targets = append(targets, p)
					}
				}
			} else {
				targets = []round.PartyID{m.To}
			}
			for _, to := range targets {
				c := cloneMessage(m)
				delivered := []*round.Message{c}
				if rule != nil {
					delivered = rule(to, c)
				}
				for _, d := range delivered {
					if b, err := d.MarshalBinary(); err == nil {
						res.Bytes[m.From] += len(b)
					}
					queue = append(queue, envelope{to: to, msg: d})
				}
			}
		}
	}
	for _, s := range sessions {
		out, err := s.Start()
		if err != nil {
			res.Errors[s.Self()] = err
			continue
		}
		post(s, out)
	}
	for len(queue) > 0 {
		i := rng.IntN(len(queue))
		e := queue[i]
		queue = slices.Delete(queue, i, i+1)
		s, ok := byID[e.to]
		if !ok || s.Done() {
			continue
		}
		res.Delivered++
		out, err := s.Handle(e.msg)
		if errors.Is(err, round.ErrDropped) {
			res.Dropped++
		}
		post(s, out)
	}
	for _, s := range sessions {
		if _, ok := res.Errors[s.Self()]; ok {
			continue
		}
		if !s.Done() {
			res.Errors[s.Self()] = &StallError{Round: s.Round(), Waiting: s.Waiting()}
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

func cloneMessage(m *round.Message) *round.Message {
	c := *m
	c.Echo = slices.Clone(m.Echo)
	c.Payload = slices.Clone(m.Payload)
	return &c
}

// Match selects messages by sender, round and recipient; zero fields match
// anything. Direct selects only direct (true) or only broadcast (false)
// messages when set.
type Match struct {
	From   round.PartyID
	To     round.PartyID
	Round  uint16
	Direct *bool
}

func (f Match) matches(to round.PartyID, m *round.Message) bool {
	return (f.From == 0 || m.From == f.From) &&
		(f.To == 0 || to == f.To) &&
		(f.Round == 0 || m.Round == f.Round) &&
		(f.Direct == nil || *f.Direct == !m.IsBroadcast())
}

// Alter applies change to every message that f matches.
func Alter(f Match, change func(m *round.Message)) Rule {
	return func(to round.PartyID, m *round.Message) []*round.Message {
		if f.matches(to, m) {
			change(m)
		}
		return []*round.Message{m}
	}
}

// FlipBit flips one bit of the payload of every message f matches (bit
// index modulo the payload length).
func FlipBit(f Match, bit int) Rule {
	return Alter(f, func(m *round.Message) {
		if len(m.Payload) == 0 {
			return
		}
		i := (bit / 8) % len(m.Payload)
		m.Payload[i] ^= 1 << (bit % 8)
	})
}

// Drop drops every message f matches.
func Drop(f Match) Rule {
	return func(to round.PartyID, m *round.Message) []*round.Message {
		if f.matches(to, m) {
			return nil
		}
		return []*round.Message{m}
	}
}

// Duplicate delivers every message f matches twice.
func Duplicate(f Match) Rule {
	return func(to round.PartyID, m *round.Message) []*round.Message {
		if f.matches(to, m) {
			return []*round.Message{m, cloneMessage(m)}
		}
		return []*round.Message{m}
	}
}

// Chain applies rules in order.
func Chain(rules ...Rule) Rule {
	return func(to round.PartyID, m *round.Message) []*round.Message {
		msgs := []*round.Message{m}
		for _, r := range rules {
			var next []*round.Message
			for _, x := range msgs {
				next = append(next, r(to, x)...)
			}
			msgs = next
		}
		return msgs
	}
}

// Recorder keeps a copy of every message it sees; a test records one run and
// injects its messages into another (cross-session replay).
type Recorder struct {
	Seen []*round.Message
}

// Rule returns a rule that records and delivers.
func (r *Recorder) Rule() Rule {
	return func(to round.PartyID, m *round.Message) []*round.Message {
		r.Seen = append(r.Seen, cloneMessage(m))
		return []*round.Message{m}
	}
}

// Ptr returns a pointer to b, for Match.Direct.
func Ptr(b bool) *bool { return &b }

// CheckBlame checks the outcome of a run in which party culprit alone
// misbehaved: no other party output anything; every other party aborted
// or stalled; no abort names anyone but culprit (an honest party is never
// framed); and, if mustName, at least one party's abort names culprit
// alone. An abort that names no one is allowed: a party that cannot prove
// who deviated (an echo mismatch on a third party's broadcast) says so.
func CheckBlame(res *Result, culprit round.PartyID, mustName bool) error {
	for p, out := range res.Outputs {
		if p != culprit {
			return fmt.Errorf("mpctest: %v output %T despite misbehaviour by %v", p, out, culprit)
		}
	}
	named := false
	for p, err := range res.Errors {
		if p == culprit {
			continue
		}
		var ae *round.AbortError
		if errors.As(err, &ae) {
			for _, c := range ae.Culprits {
				if c != culprit {
					return fmt.Errorf("mpctest: %v blames %v, who was honest: %v", p, c, ae)
				}
			}
			named = named || len(ae.Culprits) == 1
			continue
		}
		var stall *StallError
		if !errors.As(err, &stall) {
			return fmt.Errorf("mpctest: %v: %w", p, err)
		}
	}
	if mustName && !named {
		return fmt.Errorf("mpctest: nobody blamed %v: %v", culprit, res.Errors)
	}
	return nil
}
