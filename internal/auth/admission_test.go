package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestAdmissionApproved plays a developer whose key the operator did not
// approve, and a peer pushing its scope.create: under the approved policy
// both are refused for good (not as missing) and nothing is stored; a
// record signed by an approved key among others is admitted, and a
// record that names an approved key it did not sign for is refused; the
// open policy (the zero value) admits anyone.
func TestAdmissionApproved(t *testing.T) {
	ctx := context.Background()
	approved, stranger := key(t, record.P256), key(t, record.Ed25519)
	pol := AdmissionPolicy{Approved: true, Keys: []record.PublicKey{approved.Public()}}
	create := func(signers ...*record.PrivateKey) *record.Record {
		b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: "example", Origins: []string{"https://app.example"}, Mode: record.ModeUser, SessionTTL: 3600}}
		for _, k := range signers {
			b.Config.DevKeys = append(b.Config.DevKeys, k.Public())
		}
		rand.Read(b.Nonce[:])
		sign := func() (*record.Record, error) { return record.SignQuorum(record.ScopeCreate, b.Marshal(), signers...) }
		if len(signers) == 1 {
			sign = func() (*record.Record, error) { return record.Sign(record.ScopeCreate, b.Marshal(), signers[0]) }
		}
		r, err := sign()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	svc := func(p AdmissionPolicy) (*Service, store.Store) {
		st := openStore(t)
		s, err := New(Options{Store: st, Admission: p})
		if err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	submit := func(s *Service, r *record.Record) error {
		_, err := s.CreateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
		return err
	}
	stored := func(st store.Store) int {
		es, err := st.List(ctx, nsScope, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	s, st := svc(pol)
	bad := create(stranger)
	wantCode(t, submit(s, bad), api.CodeRejected, "scope.create by an unapproved key")
	err := st.Update(ctx, func(tx store.Ops) error { return Applier{Admission: pol}.Apply(ctx, tx, bad.Marshal()) })
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMissing) {
		t.Fatalf("pushed scope.create by an unapproved key: %v", err)
	}
	if n := stored(st); n != 0 {
		t.Fatalf("%d refused scopes stored", n)
	}

	// A forged record naming the approved key as its signer: the
	// signature check refuses it.
	forged := create(approved)
	forged.Auth.Sig[len(forged.Auth.Sig)-1] ^= 1
	if err := submit(s, forged); err == nil {
		t.Fatal("a scope.create with a forged approved signature was admitted")
	}

	for _, r := range []*record.Record{create(approved), create(stranger, approved)} {
		if err := submit(s, r); err != nil {
			t.Fatalf("scope.create signed by the approved key: %v", err)
		}
	}
	if n := stored(st); n != 2 {
		t.Fatalf("%d scopes stored, want 2", n)
	}

	// Open: anyone.
	o, ost := svc(AdmissionPolicy{})
	if err := submit(o, create(stranger)); err != nil {
		t.Fatalf("open cluster refused a scope: %v", err)
	}
	if n := stored(ost); n != 1 {
		t.Fatalf("open: %d scopes stored", n)
	}
}
