package mpctest

import (
	"errors"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

var parties3 = []round.PartyID{1, 2, 3}

func run(t *testing.T, parties []round.PartyID, rule Rule, seed uint64) *Result {
	t.Helper()
	ss, err := NewCommitRevealSessions(parties)
	if err != nil {
		t.Fatal(err)
	}
	return Run(ss, rule, seed)
}

func TestCommitRevealHonest(t *testing.T) {
	for seed := range uint64(20) {
		res := run(t, []round.PartyID{1, 2, 3, 4, 5}, nil, seed)
		if err := res.Err(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var first [32]byte
		for i, p := range []round.PartyID{1, 2, 3, 4, 5} {
			got := res.Outputs[p].([32]byte)
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("seed %d: %v output %x, party 1 %x", seed, p, got, first)
			}
		}
		if first == ([32]byte{}) {
			t.Fatal("all-zero output")
		}
		if res.Dropped != 0 {
			t.Fatalf("honest run dropped %d messages", res.Dropped)
		}
	}
}

// wantAbortBlaming checks that every honest party aborted naming culprit and
// that no party produced an output.
func wantAbortBlaming(t *testing.T, res *Result, culprit round.PartyID) {
	t.Helper()
	for p := range res.Outputs {
		if p != culprit {
			t.Fatalf("%v produced an output despite misbehaviour by %v", p, culprit)
		}
	}
	for p, err := range res.Errors {
		if p == culprit {
			continue
		}
		var ae *round.AbortError
		if !errors.As(err, &ae) {
			t.Fatalf("%v: error %v is not an abort", p, err)
		}
		if !ae.Blames(culprit) || len(ae.Culprits) != 1 {
			t.Fatalf("%v: abort %v does not blame exactly %v", p, ae, culprit)
		}
	}
}

func TestAlteredOpeningBlamesSender(t *testing.T) {
	res := run(t, parties3, FlipBit(Match{From: 2, Round: 3, Direct: Ptr(false)}, 5), 1)
	wantAbortBlaming(t, res, 2)
}

func TestAlteredTagBlamesSender(t *testing.T) {
	res := run(t, parties3, FlipBit(Match{From: 3, Round: 3, Direct: Ptr(true)}, 0), 2)
	wantAbortBlaming(t, res, 3)
}

func TestInconsistentBroadcastFramesNoOne(t *testing.T) {
	// Party 1 sends party 3 a different commitment than party 2 gets.
	// Nobody outputs; party 3 blames party 1 only on party 1's own echo
	// (which shows what it claims to have sent), and an echo from party 2
	// about party 1 blames no one: party 2 might be the liar.
	rule := FlipBit(Match{From: 1, To: 3, Round: 2}, 9)
	res := run(t, parties3, rule, 3)
	if err := CheckBlame(res, 1, false); err != nil {
		t.Fatal(err)
	}
	for p, err := range res.Errors {
		if p != 1 && !errors.Is(err, round.ErrInconsistentBroadcast) {
			t.Fatalf("%v: %v does not wrap ErrInconsistentBroadcast", p, err)
		}
	}
}

// Finding 6 of issue 12: an echo that misreports a third party's broadcast
// must not get that party blamed. Party 2 claims, in its echo to party 3,
// that party 1 broadcast something else: party 3 aborts naming no one.
func TestEchoLieCannotFrameThirdParty(t *testing.T) {
	rule := Alter(Match{From: 2, To: 3, Round: 3}, func(m *round.Message) {
		if len(m.Echo) > 0 {
			m.Echo[0*32] ^= 1 // party 1's entry
		}
	})
	for seed := range uint64(8) {
		res := run(t, parties3, rule, 10+seed)
		var ae *round.AbortError
		if !errors.As(res.Errors[3], &ae) || len(ae.Culprits) != 0 || !errors.Is(ae, round.ErrInconsistentBroadcast) {
			t.Fatalf("party 3: %v, want an abort naming no one", res.Errors[3])
		}
		for p, err := range res.Errors {
			if errors.As(err, &ae) && (len(ae.Culprits) > 1 || (len(ae.Culprits) == 1 && ae.Culprits[0] != 2)) {
				t.Fatalf("%v frames an honest party: %v", p, ae)
			}
		}
	}
}

func TestEchoLieBlamesLiar(t *testing.T) {
	// Party 2 misreports party 3's own commitment in its echo to party 3.
	rule := Alter(Match{From: 2, To: 3, Round: 3}, func(m *round.Message) {
		if len(m.Echo) > 0 {
			m.Echo[2*32] ^= 1
		}
	})
	res := run(t, parties3, rule, 4)
	var ae *round.AbortError
	if !errors.As(res.Errors[3], &ae) || !ae.Blames(2) {
		t.Fatalf("party 3: %v, want abort blaming party 2", res.Errors[3])
	}
	if len(res.Outputs) == 3 {
		t.Fatal("all parties finished despite a lying echo")
	}
}

func TestReplayIsDropped(t *testing.T) {
	res := run(t, parties3, Duplicate(Match{}), 5)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.Dropped == 0 {
		t.Fatal("duplicates were not reported as dropped")
	}
	if len(res.Outputs) != 3 {
		t.Fatalf("%d outputs, want 3", len(res.Outputs))
	}
}

func TestDroppedMessageStallsNamingSender(t *testing.T) {
	res := run(t, parties3, Drop(Match{From: 2, To: 1, Round: 3, Direct: Ptr(true)}), 6)
	var se *StallError
	if !errors.As(res.Errors[1], &se) || len(se.Waiting) != 1 || se.Waiting[0] != 2 {
		t.Fatalf("party 1: %v, want stall waiting for party 2", res.Errors[1])
	}
}

func TestCrossSessionMessagesAreDropped(t *testing.T) {
	var rec Recorder
	if res := run(t, parties3, rec.Rule(), 7); res.Err() != nil {
		t.Fatal(res.Err())
	}
	// Replay every message of the first run into a second run, before the
	// second run's own messages.
	injected := false
	rule := func(to round.PartyID, m *round.Message) []*round.Message {
		if injected {
			return []*round.Message{m}
		}
		injected = true
		out := []*round.Message{}
		for _, old := range rec.Seen {
			out = append(out, cloneMessage(old))
		}
		return append(out, m)
	}
	res := run(t, parties3, rule, 8)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.Dropped < len(rec.Seen) {
		t.Fatalf("dropped %d, want at least the %d replayed", res.Dropped, len(rec.Seen))
	}
}

func TestEquivocationToOnePartyBlamesSender(t *testing.T) {
	ss, err := NewCommitRevealSessions(parties3)
	if err != nil {
		t.Fatal(err)
	}
	var fromThree *round.Message
	for _, s := range ss {
		out, err := s.Start()
		if err != nil {
			t.Fatal(err)
		}
		if s.Self() == 3 {
			fromThree = out[0]
		}
	}
	if _, err := ss[0].Handle(fromThree); err != nil {
		t.Fatal(err)
	}
	other := cloneMessage(fromThree)
	other.Payload[0] ^= 0xff
	_, err = ss[0].Handle(other)
	var ae *round.AbortError
	if !errors.As(err, &ae) || !ae.Blames(3) {
		t.Fatalf("party 1: %v, want abort blaming party 3", err)
	}
	if _, err := ss[0].Result(); !errors.As(err, &ae) {
		t.Fatalf("Result after abort: %v", err)
	}
}
