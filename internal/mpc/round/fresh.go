package round

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ContributionLen is the length of each party's fresh contribution to a
// session ID (see Fresh).
const ContributionLen = 32

// freshnessOff, when set, makes the contribution round derive sid* = the
// base session ID, as if no party contributed: the protocol runs exactly as
// before this defence existed. Only TestingOnlySetFreshness sets it, and it
// exists only in builds with the keymesh_adversary tag; in a production
// binary nothing can set it.
var freshnessOff atomic.Bool

// Fresh returns round 1 of a protocol run in which every party's own fresh
// randomness enters the session ID before the party sends anything derived
// from its secrets.
//
// A base session ID (NewSessionID) is built from a nonce that whoever starts
// the run chooses. A party that trusted it alone could be made to run two
// sessions under one ID by a malicious coordinator that sends the same
// invitation twice, and for OT-based protocols that hands the peer the
// party's secret (DKLs23 signing: two OT extensions under one sid, with the
// peer's choice bits all 0 and then all 1, give ã + ã′ = 2·sk_i). So the
// run starts with a contribution exchange:
//
//	engine round 1: broadcast ContributionLen bytes read from rand, and
//	   nothing else (nothing that depends on a secret);
//	engine round 2: once every party's contribution is in, derive
//	   sid* = H(base ID, parties, contributions in party order) and call
//	   start(sid*) for the protocol's own round 1, which is finalized at
//	   once; the protocol's round k is engine round k+1.
//
// Every cryptographic use of the session ID inside the protocol (its
// commitments, zero shares, OT and VOLE session IDs, Fiat–Shamir hashes)
// must use sid*, which start receives, and the engine's echo digests of
// the protocol's broadcasts use it too. Since the contributions are a
// broadcast, the next round's echo check guarantees that the parties that
// go on agree on them, and so on sid*. An honest party's contribution is
// fresh in every run, so no other party can make it repeat a sid*, whatever
// the others choose, and whatever any store remembers.
//
// Messages keep the base ID in their header (Session.ID): the transport
// routes them by it, and the node records it. Session.FreshID returns sid*
// once it is known.
//
// The returned round must be the first round of a NewSession (or use
// NewFreshSession), once: it learns the base ID and the party set from the
// Session. start must return a round 1 that receives nothing.
func Fresh(rand io.Reader, start func(fresh SessionID) (Round, error)) Round {
	return &contribute{rand: rand, start: start}
}

// NewFreshSession is NewSession(id, self, parties, Fresh(rand, start)).
func NewFreshSession(id SessionID, self PartyID, parties []PartyID, rand io.Reader, start func(fresh SessionID) (Round, error)) (*Session, error) {
	return NewSession(id, self, parties, Fresh(rand, start))
}

// FreshID returns sid*, the session ID that the protocol's own rounds use,
// and true once the contributions are in (see Fresh). For a session that
// does not start with Fresh it returns the base ID and true; before the
// contributions are in it returns false.
func (s *Session) FreshID() (SessionID, bool) {
	if !s.fresh {
		return s.id, true
	}
	if !s.freshKnown {
		return SessionID{}, false
	}
	return s.freshID, true
}

// deriveFresh is sid* = H(base, parties, contributions in party order).
func deriveFresh(base SessionID, parties []PartyID, contributions map[PartyID][]byte) SessionID {
	t := NewTranscript("keymesh fresh session id")
	t.WriteBytes(base[:])
	t.WriteUint64(uint64(len(parties)))
	for _, p := range parties {
		t.WriteUint64(uint64(p))
		t.WriteBytes(contributions[p])
	}
	var sid SessionID
	t.Sum(sid[:0])
	return sid
}

// contribute is engine round 1 of a Fresh run: it broadcasts this party's
// contribution.
type contribute struct {
	s     *Session // set by NewSession
	rand  io.Reader
	start func(SessionID) (Round, error)
}

var _ Round = (*contribute)(nil)

func (*contribute) Number() uint16     { return 1 }
func (*contribute) Receives() Receives { return Receives{} }
func (*contribute) VerifyMessage(*Message) error {
	return errors.New("round: the contribution round takes no messages")
}
func (*contribute) StoreMessage(*Message) error {
	return errors.New("round: the contribution round takes no messages")
}

func (r *contribute) Finalize() ([]*Message, Round, error) {
	if r.s == nil {
		return nil, nil, errors.New("round: Fresh round used outside NewSession")
	}
	own := make([]byte, ContributionLen)
	if _, err := io.ReadFull(r.rand, own); err != nil {
		return nil, nil, fmt.Errorf("round: reading the session contribution: %w", err)
	}
	next := &collect{contribute: r, got: map[PartyID][]byte{r.s.self: own}}
	return []*Message{{To: Broadcast, Payload: own}}, next, nil
}

// collect is engine round 2 of a Fresh run: it stores every contribution,
// derives sid* and runs the protocol's round 1.
type collect struct {
	*contribute
	got   map[PartyID][]byte
	inner Round // the protocol's round 1, once started
}

var _ Round = (*collect)(nil)

func (*collect) Number() uint16     { return 2 }
func (*collect) Receives() Receives { return Receives{Broadcast: true} }

func (*collect) VerifyMessage(m *Message) error {
	if !m.IsBroadcast() {
		return errors.New("round: the contribution round takes broadcasts only")
	}
	if len(m.Payload) != ContributionLen {
		return fmt.Errorf("round: session contribution of %d bytes, want %d", len(m.Payload), ContributionLen)
	}
	return nil
}

func (r *collect) StoreMessage(m *Message) error {
	r.got[m.From] = m.Payload
	return nil
}

// Finalize derives sid*, starts the protocol and finalizes its round 1.
func (r *collect) Finalize() ([]*Message, Round, error) {
	sid := r.s.id
	if !freshnessOff.Load() {
		sid = deriveFresh(r.s.id, r.s.parties, r.got)
	}
	r.s.freshID, r.s.freshKnown = sid, true
	first, err := r.start(sid)
	if err != nil {
		return nil, nil, err
	}
	if first == nil || first.Number() != 1 || !first.Receives().None() {
		return nil, nil, errors.New("round: a Fresh protocol must start with a round 1 that receives nothing")
	}
	r.inner = first
	msgs, next, err := first.Finalize()
	if err != nil {
		return nil, nil, err
	}
	if _, ok := next.(*Output); ok || next == nil {
		return msgs, next, nil
	}
	return msgs, shifted{next}, nil
}

// Wipe wipes the protocol's round 1, if it was started: its Finalize may
// have failed after sampling secrets.
func (r *collect) Wipe() {
	if w, ok := r.inner.(Wiper); ok {
		w.Wipe()
	}
}

// shifted runs a protocol round one engine round later than its own number,
// behind the contribution exchange.
type shifted struct{ inner Round }

var _ Round = shifted{}

func (r shifted) Number() uint16     { return r.inner.Number() + 1 }
func (r shifted) Receives() Receives { return r.inner.Receives() }

// VerifyMessage and StoreMessage show the protocol's round its own number.
func (r shifted) VerifyMessage(m *Message) error {
	c := *m
	c.Round--
	return r.inner.VerifyMessage(&c)
}

func (r shifted) StoreMessage(m *Message) error {
	c := *m
	c.Round--
	return r.inner.StoreMessage(&c)
}

func (r shifted) Finalize() ([]*Message, Round, error) {
	msgs, next, err := r.inner.Finalize()
	if err != nil || next == nil {
		return msgs, next, err
	}
	if _, ok := next.(*Output); ok {
		return msgs, next, nil
	}
	return msgs, shifted{next}, nil
}

func (r shifted) Wipe() {
	if w, ok := r.inner.(Wiper); ok {
		w.Wipe()
	}
}
