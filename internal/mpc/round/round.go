// Package round is the engine that runs multi-party protocols written as
// explicit rounds.
//
// A protocol is a chain of Round values. Round k consumes the messages that
// the other parties produced when they finalized round k-1, and its Finalize
// produces the messages for round k+1 together with that round. Round 1
// consumes nothing: a Session finalizes it as soon as it starts. A protocol
// ends when Finalize returns an *Output, or fails when any method returns an
// error; an *AbortError names the parties to blame.
//
// The Session does the bookkeeping that every protocol needs and that is easy
// to get wrong when each protocol does it alone:
//
//   - every message is bound to a SessionID hashed over the protocol name, the
//     party set, the threshold and a nonce (NewSessionID); a message for
//     another session is dropped;
//   - a protocol that starts with Fresh mixes every party's own fresh
//     randomness into the session ID (sid*) before any party sends
//     anything derived from its secrets, so that no coordinator can make a
//     party run the same session twice by repeating a nonce;
//   - a message is accepted at most once per (round, sender, kind); an exact
//     replay is dropped, a second, different message is an equivocation and
//     aborts naming the sender;
//   - messages for later rounds are buffered until their round is current,
//     messages for past rounds are dropped;
//   - broadcasts are echo-checked: the messages of round k+1 carry a digest of
//     every round-k broadcast as their sender received it, and a receiver
//     whose own view differs aborts, naming only a party it can prove
//     misbehaved (see Session.checkEcho);
//   - when a run ends, on any path, its current round may wipe its secrets
//     (Wiper).
//
// The design follows taurushq-io/multi-party-sig's internal/round (rounds with
// VerifyMessage, StoreMessage and Finalize); the code is our own.
//
// Pure code: no I/O, no goroutines, no logging. A Session is not safe for
// concurrent use; the transport serialises calls to it.
package round

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PartyID identifies a party inside one protocol run. It is never zero; a
// protocol that needs a Shamir evaluation point for a party uses its PartyID.
type PartyID uint16

// String returns "party N".
func (p PartyID) String() string { return fmt.Sprintf("party %d", uint16(p)) }

// Broadcast is the To value of a message sent to every party.
const Broadcast PartyID = 0

// Receives says which messages a round needs from every other party before
// it can be finalized.
type Receives struct {
	Broadcast bool // one broadcast message from each other party
	Direct    bool // one point-to-point message from each other party
}

// None reports whether the round needs no message at all.
func (r Receives) None() bool { return !r.Broadcast && !r.Direct }

// Round is one step of a protocol.
//
// The Session calls VerifyMessage and then StoreMessage for each message it
// accepts, and Finalize once every message named by Receives has been stored.
// VerifyMessage must not change the round's state; StoreMessage may assume
// VerifyMessage accepted the message. Finalize is called at most once.
type Round interface {
	// Number is the round's number, starting at 1.
	Number() uint16
	// Receives says which messages this round consumes.
	Receives() Receives
	// VerifyMessage checks a message from another party. An error blames
	// the sender.
	VerifyMessage(msg *Message) error
	// StoreMessage records a verified message.
	StoreMessage(msg *Message) error
	// Finalize returns the messages for the next round and the next round,
	// or an *Output when the protocol is done. The Session fills in the
	// session ID, sender and round number of the returned messages; a round
	// sets only To and Payload.
	Finalize() ([]*Message, Round, error)
}

// Wiper is implemented by a round that holds secrets. When a run ends, on
// any path (output, abort, a failed Finalize, Session.Fail), the Session
// calls Wipe once on its current round, which must zero every secret of the
// run that it or an earlier round it holds still keeps, and must not touch
// the output it returned. A round whose own Finalize fails after it built
// the next round wipes that round itself: the Session never sees it.
type Wiper interface {
	Wipe()
}

// Output is the last "round" of a protocol: it holds the result.
type Output struct {
	Result any
}

// Number returns 0: an Output is not a round that receives messages.
func (*Output) Number() uint16               { return 0 }
func (*Output) Receives() Receives           { return Receives{} }
func (*Output) VerifyMessage(*Message) error { return errors.New("round: protocol is finished") }
func (*Output) StoreMessage(*Message) error  { return errors.New("round: protocol is finished") }
func (*Output) Finalize() ([]*Message, Round, error) {
	return nil, nil, errors.New("round: protocol is finished")
}

var _ Round = (*Output)(nil)

// ErrDropped is wrapped by the error Session.Handle returns for a message it
// ignored (wrong session, past round, exact replay, not addressed to us). The
// session goes on.
var ErrDropped = errors.New("round: message dropped")

// ErrInconsistentBroadcast is wrapped by the abort when a message's echo
// shows that its sender saw a broadcast of the previous round other than
// the one we saw (see Echo). The abort names the sender only when the
// entry is its own broadcast or ours; otherwise it names no one.
var ErrInconsistentBroadcast = errors.New("round: inconsistent broadcast")

// ErrNotFinished is returned by Session.Result while the protocol still runs.
var ErrNotFinished = errors.New("round: protocol not finished")

// AbortError ends a protocol run and names the parties to blame. Err never
// holds secret material.
type AbortError struct {
	Round    uint16
	Culprits []PartyID
	Err      error
}

// Abort returns an *AbortError blaming culprits.
func Abort(err error, culprits ...PartyID) *AbortError {
	c := slices.Clone(culprits)
	slices.Sort(c)
	return &AbortError{Culprits: slices.Compact(c), Err: err}
}

func (e *AbortError) Error() string {
	var b strings.Builder
	b.WriteString("abort")
	if e.Round != 0 {
		fmt.Fprintf(&b, " in round %d", e.Round)
	}
	if len(e.Culprits) > 0 {
		b.WriteString(", blaming ")
		for i, c := range e.Culprits {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.String())
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *AbortError) Unwrap() error { return e.Err }

// Blames reports whether p is among the culprits.
func (e *AbortError) Blames(p PartyID) bool { return slices.Contains(e.Culprits, p) }
