package round

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
)

// maxAhead is how many rounds ahead of the current one a message may be and
// still be buffered. A peer is at most one round ahead, or a few when rounds
// that receive nothing are skipped; further is dropped.
const maxAhead = 4

// Session runs one party's side of one protocol run.
//
// Call Start once, then Handle for every message that arrives, in any order,
// and send every message they return. Result reports the output once the
// protocol has finished. A Session is not safe for concurrent use.
type Session struct {
	id      SessionID
	self    PartyID
	parties []PartyID // sorted, includes self

	current Round
	started bool
	result  *Output
	err     error

	gotBroadcast map[PartyID]*Message
	gotDirect    map[PartyID]*Message
	future       []*Message

	// ownBroadcast is the payload we broadcast for the current round.
	ownBroadcast []byte
	// expectEcho is our digest of the previous round's broadcasts, which
	// every message of the current round must carry; nil if none.
	expectEcho []byte

	// fresh is set when the first round is Fresh: the protocol's rounds run
	// under freshID (sid*) once freshKnown.
	fresh      bool
	freshKnown bool
	freshID    SessionID
	// wiped is set once the current round's secrets were wiped (the run
	// ended).
	wiped bool
}

// NewSession prepares a run of the protocol whose first round is first, for
// party self among parties (self included), under session ID id. The caller
// computes id with NewSessionID, the same way at every party.
func NewSession(id SessionID, self PartyID, parties []PartyID, first Round) (*Session, error) {
	ps, err := SortParties(parties)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(ps, self) {
		return nil, fmt.Errorf("round: %v is not among the parties", self)
	}
	if first == nil || first.Number() != 1 {
		return nil, errors.New("round: the first round must be round 1")
	}
	s := &Session{id: id, self: self, parties: ps, current: first}
	if c, ok := first.(*contribute); ok {
		if c.s != nil {
			return nil, errors.New("round: a Fresh round can start one session only")
		}
		c.s, s.fresh = s, true
	}
	return s, nil
}

// ID returns the base session ID, the one given to NewSession: every
// message's header carries it, so the transport routes by it. A run that
// starts with Fresh uses FreshID (sid*) for everything cryptographic.
func (s *Session) ID() SessionID { return s.id }

// Self returns this party's ID.
func (s *Session) Self() PartyID { return s.self }

// Parties returns the sorted party set.
func (s *Session) Parties() []PartyID { return slices.Clone(s.parties) }

// Start finalizes round 1 (and any round after it that receives nothing) and
// returns the first messages to send. It may be called once.
func (s *Session) Start() ([]*Message, error) {
	if s.started {
		return nil, errors.New("round: session already started")
	}
	s.started = true
	if !s.current.Receives().None() {
		s.err = errors.New("round: round 1 must not receive messages")
		s.wipe()
		return nil, s.err
	}
	return s.advance()
}

// Handle processes one message from a peer and returns the messages to send
// in response (possibly none).
//
// A message that is ignored yields an error wrapping ErrDropped and leaves
// the session as it was. A message that proves a peer misbehaved aborts the
// session with an *AbortError; so does a failure of the protocol itself.
// After an abort, or once the protocol is done, every call returns the same
// final state: ErrDropped for messages, the abort from Result.
func (s *Session) Handle(msg *Message) ([]*Message, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: nil message", ErrDropped)
	}
	if !s.started {
		return nil, errors.New("round: Handle before Start")
	}
	if s.err != nil || s.result != nil {
		return nil, fmt.Errorf("%w: session is over", ErrDropped)
	}
	if subtle.ConstantTimeCompare(msg.SessionID[:], s.id[:]) != 1 {
		return nil, fmt.Errorf("%w: message from %v for another session", ErrDropped, msg.From)
	}
	if msg.From == s.self || !slices.Contains(s.parties, msg.From) {
		return nil, fmt.Errorf("%w: message from %v, who is not a peer in this session", ErrDropped, msg.From)
	}
	if msg.To != Broadcast && msg.To != s.self {
		return nil, fmt.Errorf("%w: message from %v addressed to %v", ErrDropped, msg.From, msg.To)
	}
	cur := s.current.Number()
	switch {
	case msg.Round < cur:
		return nil, fmt.Errorf("%w: message from %v for past round %d", ErrDropped, msg.From, msg.Round)
	case msg.Round > cur+maxAhead:
		return nil, fmt.Errorf("%w: message from %v for round %d, too far ahead of round %d", ErrDropped, msg.From, msg.Round, cur)
	case msg.Round > cur:
		for _, f := range s.future {
			if f.Round == msg.Round && f.From == msg.From && f.To == msg.To {
				if sameMessage(f, msg) {
					return nil, fmt.Errorf("%w: replayed message from %v", ErrDropped, msg.From)
				}
				return nil, s.abort(fmt.Errorf("two different round %d messages", msg.Round), msg.From)
			}
		}
		s.future = append(s.future, msg.clone())
		return nil, nil
	}
	if err := s.accept(msg); err != nil {
		return nil, err
	}
	if !s.complete() {
		return nil, nil
	}
	return s.advance()
}

// accept checks and stores one message for the current round.
func (s *Session) accept(msg *Message) error {
	want := s.current.Receives()
	got := s.gotDirect
	kind := "direct"
	if msg.IsBroadcast() {
		got, kind = s.gotBroadcast, "broadcast"
		if !want.Broadcast {
			return fmt.Errorf("%w: round %d takes no broadcast, %v sent one", ErrDropped, msg.Round, msg.From)
		}
	} else if !want.Direct {
		return fmt.Errorf("%w: round %d takes no direct message, %v sent one", ErrDropped, msg.Round, msg.From)
	}
	if prev, ok := got[msg.From]; ok {
		if sameMessage(prev, msg) {
			return fmt.Errorf("%w: replayed %s message from %v", ErrDropped, kind, msg.From)
		}
		return s.abort(fmt.Errorf("two different round %d %s messages", msg.Round, kind), msg.From)
	}
	if err := s.checkEcho(msg); err != nil {
		return err
	}
	if err := s.current.VerifyMessage(msg); err != nil {
		return s.abort(err, msg.From)
	}
	if err := s.current.StoreMessage(msg); err != nil {
		return s.abort(err, msg.From)
	}
	got[msg.From] = msg.clone()
	return nil
}

// checkEcho compares the sender's view of the previous round's broadcasts
// with ours. A difference in the entry of broadcaster P means that P sent
// different values to different parties, or that the sender lies about what
// it received. Without signed broadcasts we cannot tell which, so the abort
// names only a party whose guilt we can see ourselves:
//
//   - the entry is our own broadcast: we know what we sent (one message, the
//     same to every party, over authenticated links), so the sender
//     misreports it; the sender is blamed;
//   - the entry is the sender's own broadcast: it sent us one value and
//     claims to have sent another; whichever is true, the sender deviated
//     and is blamed;
//   - only entries of third parties differ: the third party equivocated, or
//     the sender lies about it, and nobody can tell which from what we hold;
//     the abort names no one.
//
// Naming a broadcaster on the sender's word alone would let any party frame
// any other. Every such abort wraps ErrInconsistentBroadcast, and the run
// never yields a result built on inconsistent broadcasts.
func (s *Session) checkEcho(msg *Message) error {
	if s.expectEcho == nil {
		return nil
	}
	if len(msg.Echo) != len(s.expectEcho) {
		return s.abort(fmt.Errorf("%w: echo of %d bytes, want %d", ErrInconsistentBroadcast, len(msg.Echo), len(s.expectEcho)), msg.From)
	}
	var third []PartyID
	for i, p := range s.parties {
		a, b := s.expectEcho[32*i:32*i+32], msg.Echo[32*i:32*i+32]
		if bytes.Equal(a, b) {
			continue
		}
		if p == s.self || p == msg.From {
			return s.abort(fmt.Errorf("%w: %v misreports the round %d broadcast of %v", ErrInconsistentBroadcast, msg.From, msg.Round-1, p), msg.From)
		}
		third = append(third, p)
	}
	if len(third) > 0 {
		return s.abort(fmt.Errorf("%w: %v reports a round %d broadcast of %v other than ours; either may be at fault", ErrInconsistentBroadcast, msg.From, msg.Round-1, third))
	}
	return nil
}

func (s *Session) complete() bool {
	want := s.current.Receives()
	n := len(s.parties) - 1
	return (!want.Broadcast || len(s.gotBroadcast) == n) && (!want.Direct || len(s.gotDirect) == n)
}

// advance finalizes the current round, and every following round that is
// already complete, and returns the messages to send.
func (s *Session) advance() ([]*Message, error) {
	var out []*Message
	for {
		r := s.current
		echo := s.echoDigest()
		msgs, next, err := r.Finalize()
		if err != nil {
			return out, s.abortFinalize(err)
		}
		if res, ok := next.(*Output); ok {
			s.result = res
			s.reset()
			s.wipe()
			return out, nil
		}
		if next == nil || next.Number() != r.Number()+1 {
			s.err = fmt.Errorf("round: round %d did not return round %d", r.Number(), r.Number()+1)
			s.wipe()
			if next != nil {
				wipeRound(next)
			}
			return out, s.err
		}
		s.current = next
		s.reset()
		s.expectEcho = nil
		s.ownBroadcast = nil
		if r.Receives().Broadcast && !next.Receives().None() {
			s.expectEcho = echo
		}
		for _, m := range msgs {
			if m.To != Broadcast && (m.To == s.self || !slices.Contains(s.parties, m.To)) {
				s.err = fmt.Errorf("round: round %d addressed a message to %v", r.Number(), m.To)
				s.wipe()
				return out, s.err
			}
			m.SessionID, m.From, m.Round = s.id, s.self, next.Number()
			if s.expectEcho != nil {
				m.Echo = slices.Clone(s.expectEcho)
			}
			if m.IsBroadcast() {
				s.ownBroadcast = m.Payload
			}
			out = append(out, m)
		}
		// Replay buffered messages for the new round.
		var keep []*Message
		for _, m := range s.future {
			if m.Round != next.Number() {
				keep = append(keep, m)
				continue
			}
			if err := s.accept(m); err != nil && !errors.Is(err, ErrDropped) {
				return out, err
			}
		}
		s.future = keep
		if !next.Receives().None() && !s.complete() {
			return out, nil
		}
	}
}

func (s *Session) reset() {
	s.gotBroadcast = make(map[PartyID]*Message)
	s.gotDirect = make(map[PartyID]*Message)
}

// echoDigest returns our digest of the current round's broadcasts, in party
// order with our own included, or nil if the round takes none. It is bound
// to the session ID the round ran under: the base ID up to the contribution
// round of a Fresh run (so that parties that received different
// contributions still agree on the entries of the honest ones, and blame
// lands right), sid* after it.
func (s *Session) echoDigest() []byte {
	id := s.id
	if s.freshKnown {
		id = s.freshID
	}
	if !s.current.Receives().Broadcast {
		return nil
	}
	out := make([]byte, 0, 32*len(s.parties))
	for _, p := range s.parties {
		payload := s.ownBroadcast
		if p != s.self {
			payload = s.gotBroadcast[p].Payload
		}
		t := NewTranscript("keymesh broadcast echo")
		t.WriteBytes(id[:])
		t.WriteUint64(uint64(s.current.Number()))
		t.WriteUint64(uint64(p))
		t.WriteBytes(payload)
		out = t.Sum(out)
	}
	return out
}

func (s *Session) abort(err error, culprits ...PartyID) error {
	var ae *AbortError
	if !errors.As(err, &ae) {
		ae = Abort(err, culprits...)
	}
	if ae.Round == 0 {
		ae.Round = s.current.Number()
	}
	s.err = ae
	s.wipe()
	return ae
}

func (s *Session) abortFinalize(err error) error {
	var ae *AbortError
	if errors.As(err, &ae) {
		return s.abort(ae)
	}
	s.err = fmt.Errorf("round %d: %w", s.current.Number(), err)
	s.wipe()
	return s.err
}

// wipe lets the current round wipe its secrets (see Wiper), once, when the
// run ends on any path: output, abort, failure or Fail.
func (s *Session) wipe() {
	if s.wiped {
		return
	}
	s.wiped = true
	wipeRound(s.current)
}

func wipeRound(r Round) {
	if w, ok := r.(Wiper); ok {
		w.Wipe()
	}
}

// Waiting returns the parties whose message the current round still needs,
// so that a caller whose timeout fires can name them.
func (s *Session) Waiting() []PartyID {
	if s.err != nil || s.result != nil || !s.started {
		return nil
	}
	want := s.current.Receives()
	var w []PartyID
	for _, p := range s.parties {
		if p == s.self {
			continue
		}
		_, b := s.gotBroadcast[p]
		_, d := s.gotDirect[p]
		if (want.Broadcast && !b) || (want.Direct && !d) {
			w = append(w, p)
		}
	}
	return w
}

// Round returns the number of the current round, 0 once finished.
func (s *Session) Round() uint16 {
	if s.result != nil {
		return 0
	}
	return s.current.Number()
}

// Done reports whether the protocol finished, successfully or not.
func (s *Session) Done() bool { return s.result != nil || s.err != nil }

// Result returns the protocol's output, its error, or ErrNotFinished.
func (s *Session) Result() (any, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.result == nil {
		return nil, ErrNotFinished
	}
	return s.result.Result, nil
}

// Fail ends the session with err, for a caller whose timeout fired or whose
// peer link failed. It has no effect on a finished session.
func (s *Session) Fail(err error) {
	if s.err == nil && s.result == nil {
		s.err = err
		s.wipe()
	}
}

func sameMessage(a, b *Message) bool {
	return a.Round == b.Round && a.From == b.From && a.To == b.To &&
		bytes.Equal(a.Echo, b.Echo) && bytes.Equal(a.Payload, b.Payload)
}
