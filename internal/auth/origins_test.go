package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestProductionRefusesNodeOrigins plays a node operator (or a developer
// it talked into it) that puts a node's own origin in a scope's origins,
// so that the node's /login page can ask users' passkeys for assertions:
// a production cluster refuses the scope.create and the scope.update,
// submitted or pushed by a peer, with an error that says why, and stores
// nothing; a development cluster allows it.
func TestProductionRefusesNodeOrigins(t *testing.T) {
	ctx := context.Background()
	prod := OriginPolicy{Production: true, NodeHosts: []string{"node1.example", "127.0.0.1"}}
	dev := key(t, record.P256)
	scopeRec := func(origins ...string) (*record.Record, *record.ScopeCreateBody) {
		b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: "example", Origins: origins, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}}
		rand.Read(b.Nonce[:])
		r, err := record.Sign(record.ScopeCreate, b.Marshal(), dev)
		if err != nil {
			t.Fatal(err)
		}
		return r, b
	}
	svc := func(p OriginPolicy) (*Service, store.Store) {
		st := openStore(t)
		s, err := New(Options{Store: st, Origins: p})
		if err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	create := func(s *Service, r *record.Record) error {
		_, err := s.CreateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
		return err
	}
	for _, origin := range []string{"https://node1.example", "https://NODE1.example.:8443", "http://127.0.0.1:7100"} {
		s, st := svc(prod)
		r, _ := scopeRec("https://app.example", origin)
		err := create(s, r)
		wantCode(t, err, api.CodeAuthBadProof, "production scope listing "+origin)
		if !strings.Contains(err.Error(), "node's host") {
			t.Errorf("%s: the error does not say why: %v", origin, err)
		}
		// Pushed by a peer: the replica's Applier refuses it too (not as
		// missing: it is refused for good on every node of the cluster).
		err = st.Update(ctx, func(tx store.Ops) error { return Applier{Origins: prod}.Apply(ctx, tx, r.Marshal()) })
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMissing) {
			t.Fatalf("pushed production scope listing %s: %v", origin, err)
		}
		if es, err := st.List(ctx, nsScope, "", 0); err != nil || len(es) != 0 {
			t.Fatalf("a refused scope was stored: %v %v", es, err)
		}
		// A development cluster allows it.
		ds, _ := svc(OriginPolicy{NodeHosts: prod.NodeHosts})
		if err := create(ds, r); err != nil {
			t.Fatalf("dev scope listing %s: %v", origin, err)
		}
	}

	// An app's own origin is fine in production; an update adding a node
	// origin is refused, submitted or pushed, and the scope keeps its
	// config.
	s, st := svc(prod)
	r, b := scopeRec("https://app.example")
	if err := create(s, r); err != nil {
		t.Fatalf("production scope with the app's origin: %v", err)
	}
	cfg := b.Config
	cfg.Origins = []string{"https://app.example", "https://node1.example"}
	u, err := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: b.ScopeID(), Seq: 1, Config: cfg}).Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.UpdateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(u.Marshal())})
	wantCode(t, err, api.CodeAuthBadProof, "production update adding a node origin")
	if err := st.Update(ctx, func(tx store.Ops) error { return Applier{Origins: prod}.Apply(ctx, tx, u.Marshal()) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("pushed update adding a node origin: %v", err)
	}
	if seq, got, err := s.State().Scope(ctx, b.ScopeID()); err != nil || seq != 0 || len(got.Origins) != 1 {
		t.Fatalf("scope after the refused update: %d %v %v", seq, got, err)
	}
}

// TestSameHost: node hosts match origins' hosts however they are written
// (before, a node host "[::1]" never matched http://[::1]:8080, so a
// production cluster accepted a scope origin on that node).
func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		nodeHost, origin string
		same             bool
	}{
		{"[::1]", "http://[::1]:8080", true},
		{"::1", "http://[::1]:8080", true},
		{"0:0:0:0:0:0:0:1", "https://[::1]", true},
		{"::ffff:127.0.0.1", "http://127.0.0.1:7100", true},
		{"Node1.Example.", "https://node1.example:443", true},
		{"127.0.0.1", "http://127.0.0.2", false},
		{"node1.example", "https://node1.example.evil", false},
		{"::1", "http://[::2]", false},
	} {
		p := OriginPolicy{Production: true, NodeHosts: []string{c.nodeHost}}
		err := p.check(&record.ScopeConfig{Origins: []string{c.origin}})
		if (err != nil) != c.same {
			t.Errorf("node host %q, origin %s: refused %v, want %v", c.nodeHost, c.origin, err != nil, c.same)
		}
	}
}
