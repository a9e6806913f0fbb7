package mpctest

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// CommitReveal is a small test-only protocol that proves the round engine
// and the transports: every party commits to a random 32-byte value, then
// reveals it (broadcast) and sends each peer a tag bound to the pair
// (direct), and the output is the XOR of all values. A party that opens to a
// different value, sends a bad tag or equivocates is named in the abort.
//
//	round 1: pick x_i, salt_i; broadcast c_i = H(sid, i, x_i, salt_i)
//	round 2: store c_j; broadcast (x_i, salt_i); send tag_ij = H(sid, i, j, x_i) to j
//	round 3: check c_j and tag_ji; output XOR of every x
const CommitRevealProtocol = "keymesh/test/commit-reveal/v1"

// NewCommitReveal returns round 1 of CommitReveal for party self.
func NewCommitReveal(sid round.SessionID, self round.PartyID, parties []round.PartyID) round.Round {
	return &crRound1{sid: sid, self: self, parties: parties}
}

type crRound1 struct {
	sid     round.SessionID
	self    round.PartyID
	parties []round.PartyID
}

func (r *crRound1) Number() uint16           { return 1 }
func (r *crRound1) Receives() round.Receives { return round.Receives{} }
func (r *crRound1) VerifyMessage(*round.Message) error {
	return errors.New("round 1 takes no messages")
}
func (r *crRound1) StoreMessage(*round.Message) error { return errors.New("round 1 takes no messages") }

func (r *crRound1) Finalize() ([]*round.Message, round.Round, error) {
	var x, salt [32]byte
	rand.Read(x[:])
	rand.Read(salt[:])
	c := crCommit(r.sid, r.self, x[:], salt[:])
	next := &crRound2{crRound1: r, x: x, salt: salt, commits: map[round.PartyID][]byte{}}
	return []*round.Message{{To: round.Broadcast, Payload: c}}, next, nil
}

type crRound2 struct {
	*crRound1
	x, salt [32]byte
	commits map[round.PartyID][]byte
}

func (r *crRound2) Number() uint16           { return 2 }
func (r *crRound2) Receives() round.Receives { return round.Receives{Broadcast: true} }

func (r *crRound2) VerifyMessage(m *round.Message) error {
	if len(m.Payload) != 32 {
		return fmt.Errorf("commitment of %d bytes, want 32", len(m.Payload))
	}
	return nil
}

func (r *crRound2) StoreMessage(m *round.Message) error {
	r.commits[m.From] = m.Payload
	return nil
}

func (r *crRound2) Finalize() ([]*round.Message, round.Round, error) {
	out := []*round.Message{{To: round.Broadcast, Payload: append(r.x[:], r.salt[:]...)}}
	for _, p := range r.parties {
		if p != r.self {
			out = append(out, &round.Message{To: p, Payload: crTag(r.sid, r.self, p, r.x[:])})
		}
	}
	next := &crRound3{crRound2: r, values: map[round.PartyID][]byte{}, tags: map[round.PartyID][]byte{}}
	return out, next, nil
}

type crRound3 struct {
	*crRound2
	values map[round.PartyID][]byte
	tags   map[round.PartyID][]byte
}

func (r *crRound3) Number() uint16 { return 3 }
func (r *crRound3) Receives() round.Receives {
	return round.Receives{Broadcast: true, Direct: true}
}

func (r *crRound3) VerifyMessage(m *round.Message) error {
	if m.IsBroadcast() {
		if len(m.Payload) != 64 {
			return fmt.Errorf("opening of %d bytes, want 64", len(m.Payload))
		}
		c := crCommit(r.sid, m.From, m.Payload[:32], m.Payload[32:])
		if subtle.ConstantTimeCompare(c, r.commits[m.From]) != 1 {
			return errors.New("opening does not match commitment")
		}
		return nil
	}
	if len(m.Payload) != 32 {
		return fmt.Errorf("tag of %d bytes, want 32", len(m.Payload))
	}
	return nil
}

func (r *crRound3) StoreMessage(m *round.Message) error {
	if m.IsBroadcast() {
		r.values[m.From] = m.Payload[:32]
	} else {
		r.tags[m.From] = m.Payload
	}
	return nil
}

func (r *crRound3) Finalize() ([]*round.Message, round.Round, error) {
	var bad []round.PartyID
	for p, tag := range r.tags {
		if subtle.ConstantTimeCompare(tag, crTag(r.sid, p, r.self, r.values[p])) != 1 {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return nil, nil, round.Abort(errors.New("direct tag does not match the revealed value"), bad...)
	}
	var sum [32]byte
	copy(sum[:], r.x[:])
	for _, v := range r.values {
		subtle.XORBytes(sum[:], sum[:], v)
	}
	return nil, &round.Output{Result: sum}, nil
}

func crCommit(sid round.SessionID, from round.PartyID, x, salt []byte) []byte {
	t := round.NewTranscript("keymesh test commit")
	t.WriteBytes(sid[:])
	t.WriteUint64(uint64(from))
	t.WriteBytes(x)
	t.WriteBytes(salt)
	return t.Sum(nil)
}

func crTag(sid round.SessionID, from, to round.PartyID, x []byte) []byte {
	t := round.NewTranscript("keymesh test tag")
	t.WriteBytes(sid[:])
	t.WriteUint64(uint64(from))
	t.WriteUint64(uint64(to))
	t.WriteBytes(x)
	return t.Sum(nil)
}

var (
	_ round.Round = (*crRound1)(nil)
	_ round.Round = (*crRound2)(nil)
	_ round.Round = (*crRound3)(nil)
)

// NewCommitRevealSessions returns one CommitReveal session per party, all
// under one fresh session ID.
func NewCommitRevealSessions(parties []round.PartyID) ([]*round.Session, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	sid, err := round.NewSessionID(CommitRevealProtocol, parties, len(parties), nonce)
	if err != nil {
		return nil, err
	}
	var out []*round.Session
	for _, p := range parties {
		s, err := round.NewSession(sid, p, parties, NewCommitReveal(sid, p, parties))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
