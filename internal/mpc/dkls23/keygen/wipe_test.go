package keygen

import (
	"crypto/rand"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// Finding 7 of issue 12: key generation wipes its dealt polynomial, the
// shares dealt to it and the seed contributions on every exit, and on an
// abort the new rvole setups too; on success the output share is intact.
func TestKeygenWipesOnEveryExit(t *testing.T) {
	ps := []round.PartyID{1, 2}
	for _, tc := range []struct {
		name string
		rule mpctest.Rule
		ok   bool
	}{
		{"success", nil, true},
		// Party 2's result digest altered: party 1 aborts in the last
		// round, after it built its share.
		{"abort in the last round", mpctest.FlipBit(mpctest.Match{From: 2, Round: 5, Direct: mpctest.Ptr(false)}, 7), false},
		// Party 2's dealt share altered: party 1's Feldman check fails.
		{"abort on the Feldman check", mpctest.FlipBit(mpctest.Match{From: 2, Round: 4, Direct: mpctest.Ptr(true)}, 8*4+100), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nonce := make([]byte, 32)
			rand.Read(nonce)
			var rounds []round.Round
			var ss []*round.Session
			for _, p := range ps {
				sid, err := round.NewSessionID(ProtocolKeygen, ps, 2, nonce)
				if err != nil {
					t.Fatal(err)
				}
				c := &config{self: p, all: ps, dealers: ps, receivers: ps, threshold: 2, rand: rand.Reader, isKeygen: true, protocol: ProtocolKeygen}
				if p == 1 {
					c.testingOnlyTrace = func(r round.Round) { rounds = append(rounds, r) }
				}
				s, err := c.session(sid)
				if err != nil {
					t.Fatal(err)
				}
				ss = append(ss, s)
			}
			mpctest.Run(ss, tc.rule, 1)
			out, err := ss[0].Result()
			if (err == nil) != tc.ok {
				t.Fatalf("party 1: %v", err)
			}
			var setups []*rvole.AliceSetup
			for _, r := range rounds {
				switch r := r.(type) {
				case *round2:
					for k := range r.poly {
						if !r.poly[k].IsZero() {
							t.Error("dealt polynomial left")
						}
					}
					for _, b := range append(mapValues(r.mySeeds), mapValues(r.seeds)...) {
						for _, x := range b {
							if x != 0 {
								t.Fatal("seed contribution left")
							}
						}
					}
				case *round3:
					for _, s := range r.dealt {
						if !s.IsZero() {
							t.Error("dealt share left")
						}
					}
					for _, a := range r.alice {
						setups = append(setups, a)
					}
				}
			}
			if tc.ok {
				sh := out.(*dkls23.Share)
				if sh.SecretShare().IsZero() || sh.Peer(2).Alice().Equal(new(rvole.AliceSetup)) {
					t.Fatal("the output share was wiped")
				}
				return
			}
			if len(setups) == 0 {
				t.Fatal("no rvole setups were recorded")
			}
			for _, a := range setups {
				if !a.Equal(new(rvole.AliceSetup)) {
					t.Error("rvole setup of an aborted run left")
				}
			}
		})
	}
}

func mapValues(m map[round.PartyID][]byte) [][]byte {
	var out [][]byte
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
