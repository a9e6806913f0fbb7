package rvole

import (
	"errors"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/curve"
)

// Wipe clears an unfinished multiplication's choice bits and OT output and
// spends it; Zero overwrites a setup's seeds.
func TestWipeAndZero(t *testing.T) {
	r := testRand(t)
	alice, bob := setupPair(t, r)
	beta, err := curve.RandomScalar(r)
	if err != nil {
		t.Fatal(err)
	}
	mul, _, err := bob.Start([]byte("sid"), beta, r)
	if err != nil {
		t.Fatal(err)
	}
	omega := mul.omega
	mul.Wipe()
	for _, w := range omega {
		if w != 0 {
			t.Fatal("choice bits left")
		}
	}
	if mul.ext != nil {
		t.Fatal("OT-extension output left")
	}
	if _, err := mul.Finish(nil); !errors.Is(err, errUsed) {
		t.Fatalf("Finish after Wipe: %v", err)
	}
	alice.Zero()
	bob.Zero()
	if !alice.Equal(new(AliceSetup)) || !bob.Equal(new(BobSetup)) {
		t.Fatal("setup seeds left")
	}
}
