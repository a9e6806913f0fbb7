package keygen

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// round2 stores the commitments V_j and the first rvole setup messages,
// then opens this party's commitment, sends the dealt shares and answers the
// rvole setups (this party as Alice).
type round2 struct {
	*round1

	// Our dealing (dealers only).
	poly     []secp256k1.ModNScalar
	coeffs   [][]byte // encoded C_i,k
	proof    []byte
	salt     []byte
	myCommit []byte

	bobSetup map[round.PartyID]*rvole.BobSetupState
	mySeeds  map[round.PartyID][]byte

	commits map[round.PartyID][]byte // V_j
	setup1  map[round.PartyID][]byte // rvole setup message 1 from j (j as Bob)
	seeds   map[round.PartyID][]byte // j's seed contribution
}

var _ round.Round = (*round2)(nil)

func (r *round2) Number() uint16           { return 2 }
func (r *round2) Receives() round.Receives { return round.Receives{Broadcast: true, Direct: true} }

func (r *round2) VerifyMessage(m *round.Message) error {
	if m.IsBroadcast() {
		if len(m.Payload) != 32 {
			return fmt.Errorf("keygen: commitment of %d bytes, want 32", len(m.Payload))
		}
		return nil
	}
	if !(r.isReceiver(r.self) && r.isReceiver(m.From)) {
		if len(m.Payload) != 0 {
			return errors.New("keygen: unexpected direct payload")
		}
		return nil
	}
	f, err := dkls23.SplitFields(m.Payload, 2)
	if err != nil {
		return fmt.Errorf("keygen: round 2 direct message: %w", err)
	}
	if len(f[0]) != dkls23.SeedLen {
		return fmt.Errorf("keygen: seed contribution of %d bytes", len(f[0]))
	}
	return nil
}

func (r *round2) StoreMessage(m *round.Message) error {
	if m.IsBroadcast() {
		r.commits[m.From] = m.Payload
		return nil
	}
	if r.isReceiver(r.self) && r.isReceiver(m.From) {
		f, _ := dkls23.SplitFields(m.Payload, 2)
		r.seeds[m.From] = f[0]
		r.setup1[m.From] = f[1]
	}
	return nil
}

// Wipe zeroes the dealt polynomial and the zero-sharing seed contributions
// (round.Wiper), and drops the base-OT states of unfinished setups.
func (r *round2) Wipe() {
	for k := range r.poly {
		r.poly[k].Zero()
	}
	for _, b := range r.mySeeds {
		clear(b)
	}
	for _, b := range r.seeds {
		clear(b)
	}
	clear(r.bobSetup)
}

// Finalize implements round 2 (see the package doc).
func (r *round2) Finalize() (msgs []*round.Message, nr round.Round, err error) {
	next := &round3{
		round2:   r,
		alice:    map[round.PartyID]*rvole.AliceSetup{},
		bob:      map[round.PartyID]*rvole.BobSetup{},
		openings: map[round.PartyID][]secp256k1.JacobianPoint{},
		dealt:    map[round.PartyID]*secp256k1.ModNScalar{},
		setup2:   map[round.PartyID][]byte{},
	}
	defer func() {
		if err != nil {
			next.Wipe() // the setups answered so far; wipes r too
		}
	}()
	// Answer every rvole setup in which we are Alice.
	for p, m1 := range r.setup1 {
		a, m2, err := rvole.SetupAlice(r.pairSID(r.self, p), m1, r.rand)
		if err != nil {
			return nil, nil, round.Abort(fmt.Errorf("keygen: rvole setup from %v: %w", p, err), p)
		}
		next.alice[p] = a
		next.setup2[p] = m2
	}
	var opening []byte
	if r.isDealer(r.self) {
		opening = dkls23.AppendField(opening, r.salt)
		for _, c := range r.coeffs {
			opening = dkls23.AppendField(opening, c)
		}
		opening = dkls23.AppendField(opening, r.proof)
	}
	out := []*round.Message{{To: round.Broadcast, Payload: opening}}
	for _, p := range r.all {
		if p == r.self {
			continue
		}
		var payload []byte
		if r.isDealer(r.self) && r.isReceiver(p) {
			s := evaluate(r.poly, p)
			payload = dkls23.AppendField(payload, curve.EncodeScalar(&s))
			s.Zero()
		}
		if r.isReceiver(r.self) && r.isReceiver(p) {
			payload = dkls23.AppendField(payload, next.setup2[p])
		}
		out = append(out, &round.Message{To: p, Payload: payload})
	}
	if r.isDealer(r.self) && r.isReceiver(r.self) {
		s := evaluate(r.poly, r.self)
		next.dealt[r.self] = &s
	}
	r.trace(next)
	return out, next, nil
}

// evaluate returns g(x) by Horner's rule, in constant time in g.
func evaluate(g []secp256k1.ModNScalar, x round.PartyID) secp256k1.ModNScalar {
	xs := dkls23.Scalar(x)
	var acc secp256k1.ModNScalar
	for k := len(g) - 1; k >= 0; k-- {
		acc.Mul(&xs).Add(&g[k])
	}
	return acc
}
