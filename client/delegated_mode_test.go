package client_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// TestDelegatedRecordKeepsNamedMode: a delegated registration built
// offline with client.DelegatedRegistrationRecord under a user-mode
// config (seq 1 of a scope created in developer mode) gets user mode on
// every node, whether it arrives before or after the update that moves
// the scope to developer mode (seq 2), and before or after the config it
// names. Without the seq it took the base config's mode (developer): the
// developer would hold an account it registered as the user's.
func TestDelegatedRecordKeepsNamedMode(t *testing.T) {
	ctx := context.Background()
	devRec, err := record.GenerateKey(record.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := client.ParseKey(devRec.MarshalPrivate())
	if err != nil {
		t.Fatal(err)
	}
	user, _ := client.GenerateKey("ed25519")
	cfg := func(m record.Mode) record.ScopeConfig {
		return record.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: m, SessionTTL: 3600, DevKeys: []record.PublicKey{devRec.Public()}}
	}
	sb := &record.ScopeCreateBody{Config: cfg(record.ModeDeveloper)}
	rand.Read(sb.Nonce[:])
	scope := sb.ScopeID()
	sign := func(k record.Kind, body []byte) []byte {
		r, err := record.Sign(k, body, devRec)
		if err != nil {
			t.Fatal(err)
		}
		return r.Marshal()
	}
	create := sign(record.ScopeCreate, sb.Marshal())
	toUser := sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg(record.ModeUser)}).Marshal())
	toDev := sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 2, Config: cfg(record.ModeDeveloper)}).Marshal())
	p, err := client.DelegatedRegistrationRecord(dev, scope, 1, "carol", user.Public())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := base64.RawURLEncoding.DecodeString(p.Record)
	if err != nil {
		t.Fatal(err)
	}

	for name, order := range map[string][][]byte{
		"registration before the mode change": {create, toUser, reg, toDev},
		"mode change before the registration": {create, toUser, toDev, reg},
		"registration before its config":      {create, reg, toDev, toUser},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := sqlite.Open(filepath.Join(t.TempDir(), "auth.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			// Apply in order; a record missing a dependency is retried
			// once more records applied, as the replica does.
			pending := order
			for len(pending) > 0 {
				var next [][]byte
				for _, rec := range pending {
					err := st.Update(ctx, func(tx store.Ops) error { return auth.Applier{}.Apply(ctx, tx, rec) })
					if errors.Is(err, replica.ErrMissing) {
						next = append(next, rec)
					} else if err != nil {
						t.Fatalf("apply: %v", err)
					}
				}
				if len(next) == len(pending) {
					t.Fatalf("%d records never apply", len(next))
				}
				pending = next
			}
			svc, err := auth.New(auth.Options{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			seq, cur, err := svc.State().Scope(ctx, scope)
			if err != nil || seq != 2 || cur.Mode != record.ModeDeveloper {
				t.Fatalf("scope at %d in %v (%v), want 2 in developer mode", seq, cur, err)
			}
			m, err := svc.State().AccountMode(ctx, scope, "carol", cur)
			if err != nil || m != record.ModeUser {
				t.Fatalf("carol's mode %v (%v), want user: the mode of the config her registration named", m, err)
			}
		})
	}
}
