//go:build keymesh_adversary

package round_test

import (
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// With freshness switched off (the test-only switch), a repeated base ID
// gives the same sid*: the base ID itself. This is what the adversarial
// tests use to show that an attack works without the defence.
func TestFreshnessOffRepeatsSessionID(t *testing.T) {
	was := round.TestingOnlySetFreshness(false)
	defer round.TestingOnlySetFreshness(was)
	if !was {
		t.Fatal("freshness is not on by default")
	}
	base := baseID(t)
	for run := range 2 {
		var wipes int
		ss, _ := freshToys(t, base, []round.PartyID{1, 2, 3}, &wipes)
		if err := mpctest.Run(ss, nil, uint64(run)).Err(); err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if f, ok := s.FreshID(); !ok || f != base {
				t.Fatalf("run %d, %v: sid* differs from the base ID with freshness off", run, s.Self())
			}
		}
	}
}
