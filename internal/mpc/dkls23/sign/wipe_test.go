package sign

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
	"github.com/keymesh/keymesh/internal/mpctest"
)

var (
	wipeOnce   sync.Once
	wipeShares []*dkls23.Share
	wipeErr    error
)

// tracedRun runs a 2-party signing in which party 1's rounds are recorded,
// under rule, and returns them and party 1's session.
// If stopAt is not 0, party 1 gets no message of engine round stopAt or
// later: it waits there.
func tracedRun(t *testing.T, rule mpctest.Rule, stopAt uint16) ([]round.Round, *round.Session) {
	t.Helper()
	wipeOnce.Do(func() {
		ps := []round.PartyID{1, 2}
		nonce := make([]byte, 32)
		var ss []*round.Session
		for _, p := range ps {
			s, err := keygen.NewSession(p, ps, 2, nonce, rand.Reader)
			if err != nil {
				wipeErr = err
				return
			}
			ss = append(ss, s)
		}
		res := mpctest.Run(ss, nil, 1)
		if wipeErr = res.Err(); wipeErr == nil {
			wipeShares = []*dkls23.Share{res.Outputs[1].(*dkls23.Share), res.Outputs[2].(*dkls23.Share)}
		}
	})
	if wipeErr != nil {
		t.Fatal(wipeErr)
	}
	// Copies: a caught cheater is refused on the share.
	var shares []*dkls23.Share
	for _, sh := range wipeShares {
		b, err := sh.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		c := new(dkls23.Share)
		if err := c.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		shares = append(shares, c)
	}
	signers := []round.PartyID{1, 2}
	digest, nonce := make([]byte, 32), make([]byte, 32)
	rand.Read(nonce)
	c, sid, err := newConfig(shares[0], signers, digest, nonce, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var rounds []round.Round
	c.testingOnlyTrace = func(r round.Round) { rounds = append(rounds, r) }
	s1, err := c.session(sid)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSession(shares[1], signers, digest, nonce, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if stopAt != 0 {
		inner := rule
		rule = func(to round.PartyID, m *round.Message) []*round.Message {
			if to == 1 && m.Round >= stopAt {
				return nil
			}
			if inner != nil {
				return inner(to, m)
			}
			return []*round.Message{m}
		}
	}
	mpctest.Run([]*round.Session{s1, s2}, rule, 1)
	return rounds, s1
}

func isZero(xs ...*secp256k1.ModNScalar) bool {
	for _, x := range xs {
		if x != nil && !x.IsZero() {
			return false
		}
	}
	return true
}

// checkWiped asserts that every secret reachable from the recorded rounds
// is zero: r_i, φ_i, χ_{i,j}, Bob's choice bits; sk_i, c_u, c_v, d_u, d_v.
func checkWiped(t *testing.T, rounds []round.Round) {
	t.Helper()
	for _, r := range rounds {
		switch r := r.(type) {
		case *round2:
			if !isZero(r.r, r.phi) {
				t.Error("r_i or φ_i left")
			}
			for _, c := range r.chi {
				if !c.IsZero() {
					t.Error("χ left")
				}
			}
			for _, m := range r.bobMul {
				// A wiped (or finished) multiplication is spent; package
				// rvole's tests check that Wipe clears the choice bits.
				if _, err := m.Finish(nil); err == nil || errors.Is(err, rvole.ErrCheatDetected) {
					t.Error("Bob's multiplication state left")
				}
			}
		case *round3:
			if !r.sk.IsZero() {
				t.Error("sk_i left")
			}
			for j := range r.cu {
				if !isZero(r.cu[j], r.cv[j]) {
					t.Error("c_u or c_v left")
				}
			}
			for _, a := range r.adjust {
				if !isZero(&a.du, &a.dv) {
					t.Error("d_u or d_v left")
				}
			}
		}
	}
}

// Finding 7 of issue 12: a session's secrets are wiped on every exit, not
// only after a signature.
func TestSecretsWipedOnEveryExit(t *testing.T) {
	flip := func(rnd uint16, bit int) mpctest.Rule {
		return mpctest.FlipBit(mpctest.Match{From: 2, To: 1, Round: rnd, Direct: mpctest.Ptr(true)}, bit)
	}
	for _, tc := range []struct {
		name       string
		rule       mpctest.Rule
		stopBefore uint16 // Fail party 1 once it reaches this engine round
		want       func(error) bool
	}{
		{"success", nil, 0, func(err error) bool { return err == nil }},
		{"abort as Alice (OT-extension check)", flip(3, 8*100+1), 0, func(err error) bool { return Cheaters(err) != nil }},
		{"abort as Bob (multiplication check)", flip(4, 8*(4+33+4+33+4+32+4+2+100)+3), 0, func(err error) bool { return Cheaters(err) != nil }},
		{"abort on the Γ check", flip(4, 8*5+2), 0, func(err error) bool { return err != nil }},
		{"Fail in engine round 3", nil, 3, func(err error) bool { return errors.Is(err, errTimeout) }},
		{"Fail in engine round 4", nil, 4, func(err error) bool { return errors.Is(err, errTimeout) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rounds, s1 := tracedRun(t, tc.rule, tc.stopBefore)
			if tc.stopBefore != 0 {
				if s1.Done() {
					t.Fatal("party 1 finished")
				}
				s1.Fail(errTimeout)
			}
			_, err := s1.Result()
			if !tc.want(err) {
				t.Fatalf("party 1: %v", err)
			}
			if len(rounds) < 2 {
				t.Fatalf("only %d rounds ran", len(rounds))
			}
			checkWiped(t, rounds)
		})
	}
}

var errTimeout = errors.New("test: timeout")
