package round_test

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// toy is a two-round protocol for engine tests: round 1 broadcasts the
// session ID it was given, round 2 checks that every party got the same
// one and outputs it. Each round counts its Wipe calls in *wipes.
type toy struct {
	n     uint16
	sid   round.SessionID
	wipes *int
	got   map[round.PartyID][]byte
}

func (r *toy) Number() uint16 { return r.n }
func (r *toy) Receives() round.Receives {
	return round.Receives{Broadcast: r.n == 2}
}
func (r *toy) VerifyMessage(m *round.Message) error {
	if string(m.Payload) != string(r.sid[:]) {
		return errors.New("toy: a different session ID")
	}
	return nil
}
func (r *toy) StoreMessage(m *round.Message) error { r.got[m.From] = m.Payload; return nil }
func (r *toy) Finalize() ([]*round.Message, round.Round, error) {
	if r.n == 1 {
		next := &toy{n: 2, sid: r.sid, wipes: r.wipes, got: map[round.PartyID][]byte{}}
		return []*round.Message{{To: round.Broadcast, Payload: r.sid[:]}}, next, nil
	}
	return nil, &round.Output{Result: r.sid}, nil
}
func (r *toy) Wipe() { *r.wipes++ }

var _ round.Wiper = (*toy)(nil)

// freshToys returns one Fresh session of the toy protocol per party, all
// under base ID base, and the sid* each party's protocol was started with.
func freshToys(t *testing.T, base round.SessionID, parties []round.PartyID, wipes *int) ([]*round.Session, map[round.PartyID]*round.SessionID) {
	t.Helper()
	started := map[round.PartyID]*round.SessionID{}
	var ss []*round.Session
	for _, p := range parties {
		id := new(round.SessionID)
		started[p] = id
		s, err := round.NewFreshSession(base, p, parties, rand.Reader, func(fresh round.SessionID) (round.Round, error) {
			*id = fresh
			return &toy{n: 1, sid: fresh, wipes: wipes}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	return ss, started
}

func baseID(t *testing.T) round.SessionID {
	t.Helper()
	sid, err := round.NewSessionID("keymesh/test/toy", []round.PartyID{1, 2, 3}, 2, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// Issue 12: a second session with the same base ID (the same nonce) at an
// honest party gets a different sid*; every party of one run agrees on
// sid*; the protocol is started with sid*; messages carry the base ID; the
// protocol's round k is engine round k+1.
func TestFreshSessionID(t *testing.T) {
	parties := []round.PartyID{1, 2, 3}
	base := baseID(t)
	var first round.SessionID
	for run := range 2 {
		var wipes int
		ss, started := freshToys(t, base, parties, &wipes)
		for _, s := range ss {
			if _, ok := s.FreshID(); ok {
				t.Fatal("FreshID known before the contributions")
			}
		}
		var rec mpctest.Recorder
		res := mpctest.Run(ss, rec.Rule(), uint64(run))
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		fresh, ok := ss[0].FreshID()
		if !ok || fresh == base {
			t.Fatalf("run %d: FreshID %v, ok %v", run, fresh, ok)
		}
		for _, s := range ss {
			if s.ID() != base {
				t.Fatal("ID() is not the base ID")
			}
			f, _ := s.FreshID()
			if f != fresh || *started[s.Self()] != fresh || res.Outputs[s.Self()] != fresh {
				t.Fatalf("%v disagrees on sid*", s.Self())
			}
		}
		rounds := map[uint16]int{}
		for _, m := range rec.Seen {
			if m.SessionID != base {
				t.Fatal("a message carries another session ID than the base ID")
			}
			rounds[m.Round]++
		}
		// Contributions (engine round 2) and the toy's broadcast (engine
		// round 3), 3 parties × 2 recipients each.
		if len(rounds) != 2 || rounds[2] != 6 || rounds[3] != 6 {
			t.Fatalf("messages per engine round: %v", rounds)
		}
		if wipes != 3 {
			t.Fatalf("%d wipes on success, want one per party", wipes)
		}
		if run == 0 {
			first = fresh
		} else if fresh == first {
			t.Fatal("a repeated base ID gave the same sid*")
		}
	}
}

// A party that sends two parties different contributions makes them derive
// different sid*: the echo in the next round exposes it before anything
// else is processed, and the abort names no honest party.
func TestFreshEquivocatedContribution(t *testing.T) {
	parties := []round.PartyID{1, 2, 3}
	var wipes int
	ss, _ := freshToys(t, baseID(t), parties, &wipes)
	rule := mpctest.FlipBit(mpctest.Match{From: 1, To: 3, Round: 2}, 0)
	res := mpctest.Run(ss, rule, 1)
	if err := mpctest.CheckBlame(res, 1, false); err != nil {
		t.Fatal(err)
	}
	for p, err := range res.Errors {
		if p != 1 && !errors.Is(err, round.ErrInconsistentBroadcast) {
			t.Fatalf("%v: %v", p, err)
		}
	}
}

// A contribution of the wrong length aborts naming its sender.
func TestFreshBadContribution(t *testing.T) {
	parties := []round.PartyID{1, 2}
	var wipes int
	ss, _ := freshToys(t, baseID(t), parties, &wipes)
	rule := mpctest.Alter(mpctest.Match{From: 2, Round: 2}, func(m *round.Message) { m.Payload = m.Payload[:31] })
	res := mpctest.Run(ss, rule, 1)
	var ae *round.AbortError
	if !errors.As(res.Errors[1], &ae) || !ae.Blames(2) || len(ae.Culprits) != 1 {
		t.Fatalf("party 1: %v", res.Errors[1])
	}
	if wipes != 0 {
		t.Fatal("the protocol ran despite a bad contribution")
	}
}

// The Session wipes the current round on every exit: output, abort in a
// later round, and Fail.
func TestWipeOnEveryExit(t *testing.T) {
	parties := []round.PartyID{1, 2}
	t.Run("abort", func(t *testing.T) {
		var wipes int
		ss, _ := freshToys(t, baseID(t), parties, &wipes)
		res := mpctest.Run(ss, mpctest.FlipBit(mpctest.Match{From: 2, Round: 3}, 3), 1)
		var ae *round.AbortError
		if !errors.As(res.Errors[1], &ae) || !ae.Blames(2) {
			t.Fatalf("party 1: %v", res.Errors[1])
		}
		if wipes < 1 {
			t.Fatal("the aborted party's round was not wiped")
		}
	})
	t.Run("fail", func(t *testing.T) {
		var wipes int
		ss, _ := freshToys(t, baseID(t), parties, &wipes)
		a, b := ss[0], ss[1]
		outA, err := a.Start()
		if err != nil {
			t.Fatal(err)
		}
		outB, err := b.Start()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Handle(outA[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Handle(outB[0]); err != nil { // a is now in the toy's round 2
			t.Fatal(err)
		}
		a.Fail(errors.New("timeout"))
		a.Fail(errors.New("again"))
		if wipes != 1 {
			t.Fatalf("%d wipes after Fail, want 1", wipes)
		}
	})
}

// A Fresh round starts one session only.
func TestFreshRoundOnce(t *testing.T) {
	r := round.Fresh(rand.Reader, func(round.SessionID) (round.Round, error) { return nil, nil })
	if _, err := round.NewSession(baseID(t), 1, []round.PartyID{1, 2}, r); err != nil {
		t.Fatal(err)
	}
	if _, err := round.NewSession(baseID(t), 2, []round.PartyID{1, 2}, r); err == nil {
		t.Fatal("a Fresh round started a second session")
	}
}
