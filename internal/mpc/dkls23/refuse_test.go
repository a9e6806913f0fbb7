package dkls23_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// copyShare returns an independent copy of s (through its encoding).
func copyShare(t *testing.T, s *dkls23.Share) *dkls23.Share {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var c dkls23.Share
	if err := c.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &c
}

// Issue 12, finding 3: refusing 2 and then 3, from different goroutines
// while others read and encode the share, leaves both refused; the
// encoding keeps them; a copy of the Share value shares the refusals
// rather than holding a stale set.
func TestRefusalsAccumulate(t *testing.T) {
	s := copyShare(t, testShares(t)[0])
	var wg sync.WaitGroup
	for _, p := range []round.PartyID{2, 3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Refuse(p); err != nil {
				t.Error(err)
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Refused(2)
			if _, err := s.MarshalBinary(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := s.RefusedPeers(); !slices.Equal(got, []round.PartyID{2, 3}) {
		t.Fatalf("refused %v, want [2 3]", got)
	}
	if err := s.Refuse(2); err != nil { // again: no change
		t.Fatal(err)
	}
	if err := s.Refuse(1); err == nil {
		t.Fatal("refused itself")
	}
	if err := s.Refuse(9); err == nil {
		t.Fatal("refused a party that is not a peer")
	}
	again := copyShare(t, s)
	if got := again.RefusedPeers(); !slices.Equal(got, []round.PartyID{2, 3}) {
		t.Fatalf("after a round trip, refused %v", got)
	}
	// The stale-copy bug: a copy of the value taken before a refusal sees
	// it, and a refusal through the copy reaches the original.
	fresh := copyShare(t, testShares(t)[0])
	v := *fresh
	if err := fresh.Refuse(2); err != nil {
		t.Fatal(err)
	}
	if err := v.Refuse(3); err != nil {
		t.Fatal(err)
	}
	for _, sh := range []*dkls23.Share{fresh, &v} {
		if !sh.Refused(2) || !sh.Refused(3) {
			t.Fatalf("a copy lost a refusal: %v", sh.RefusedPeers())
		}
	}
}

// Zero overwrites the share's secrets, the random-VOLE setups included.
func TestShareZero(t *testing.T) {
	s := copyShare(t, testShares(t)[0])
	alice, bob := s.Peer(2).Alice(), s.Peer(2).Bob()
	before := copyShare(t, s)
	s.Zero()
	if !s.SecretShare().IsZero() || s.Peer(2) != nil {
		t.Fatal("secret or pairwise state left")
	}
	if alice.Equal(before.Peer(2).Alice()) || bob.Equal(before.Peer(2).Bob()) {
		t.Fatal("random-VOLE setups not overwritten")
	}
}
