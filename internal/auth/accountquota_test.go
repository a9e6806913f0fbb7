package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestMaxAccounts: a scope with a quota of 2 accounts. Submitting a
// third registration is refused. Three registrations pushed past the
// submission check (a malicious node) are applied in opposite orders on
// two nodes' stores: both nodes let the same two accounts act, those
// with the lowest record ids, and refuse the third alike; a default
// scope is not limited by it.
func TestMaxAccounts(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	dev := key(t, record.Ed25519)
	b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeDeveloper, SessionTTL: 3600,
		DevKeys: []record.PublicKey{dev.Public()}, Quota: record.ScopeQuota{MaxAccounts: 2}}}
	rand.Read(b.Nonce[:])
	create, err := record.Sign(record.ScopeCreate, b.Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	scope := b.ScopeID()
	reg := func(account string) *record.Record {
		rb := &record.AccountRegisterBody{Scope: scope, Account: account, Time: now.Unix()}
		rand.Read(rb.Nonce[:])
		r, err := record.Sign(record.AccountRegister, rb.Marshal(), dev)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	node := func() (*Service, store.Store) {
		st := openStore(t)
		s, err := New(Options{Store: st, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SubmitRecord(ctx, create); err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	apply := func(st store.Store, r *record.Record) {
		if err := st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, r.Marshal()) }); err != nil {
			t.Fatalf("apply %s: %v", r.Kind, err)
		}
	}
	authorize := func(s *Service, account string, n byte) error {
		o := op(scope, account, n)
		_, err := s.Authorize(ctx, o, header(devProof(t, dev, scope, account, o, now)))
		return err
	}

	// Submission.
	s, _ := node()
	for _, a := range []string{"a1", "a2"} {
		if err := s.SubmitRecord(ctx, reg(a)); err != nil {
			t.Fatalf("registration %s within the quota: %v", a, err)
		}
	}
	wantCode(t, apiError(s.SubmitRecord(ctx, reg("a3"))), api.CodeLimitExceeded, "a third account in a scope of 2")
	if ok, _ := s.State().HasAccount(ctx, scope, "a3"); ok {
		t.Fatal("the refused registration was stored")
	}
	// Another registration of an existing account adds no account.
	if err := s.SubmitRecord(ctx, reg("a1")); err != nil {
		t.Fatalf("a second registration of a1: %v", err)
	}

	// Pushed past submission, in two orders.
	recs := []*record.Record{reg("u1"), reg("u2"), reg("u3")}
	byID := slices.Clone(recs)
	slices.SortFunc(byID, func(x, y *record.Record) int { xi, yi := x.ID(), y.ID(); return bytes.Compare(xi[:], yi[:]) })
	within := map[string]bool{}
	for _, r := range byID[:2] {
		rb, _ := record.DecodeAccountRegister(r.Body)
		within[rb.Account] = true
	}
	s1, st1 := node()
	s2, st2 := node()
	for i := range recs {
		apply(st1, recs[i])
		apply(st2, recs[len(recs)-1-i])
	}
	for i, a := range []string{"u1", "u2", "u3"} {
		e1, e2 := authorize(s1, a, byte(i+1)), authorize(s2, a, byte(i+1))
		if (e1 == nil) != (e2 == nil) {
			t.Fatalf("%s: the nodes disagree: %v / %v", a, e1, e2)
		}
		if within[a] && e1 != nil {
			t.Fatalf("%s has one of the 2 lowest registration ids and was refused: %v", a, e1)
		}
		if !within[a] {
			wantCode(t, e1, api.CodeLimitExceeded, fmt.Sprintf("%s beyond the quota", a))
		}
	}

	// An account within the quota until a registration with a lower id
	// arrives: the remembered answer (quotaMemo) follows the new epoch.
	s3, st3 := node()
	apply(st3, byID[1])
	apply(st3, byID[2])
	last, _ := record.DecodeAccountRegister(byID[2].Body)
	if err := authorize(s3, last.Account, 7); err != nil {
		t.Fatalf("%s within the quota before the third registration: %v", last.Account, err)
	}
	apply(st3, byID[0])
	wantCode(t, authorize(s3, last.Account, 8), api.CodeLimitExceeded, "an account pushed out by a lower registration id")

	// The default quota: no limit a test reaches.
	if q := ResolveQuota(record.ScopeQuota{}); q.MaxAccounts != DefaultMaxAccounts {
		t.Fatalf("default MaxAccounts %d", q.MaxAccounts)
	}
}
