package counter

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// TestApply: on a real store, a valid add counts once whatever its
// signature, and an invalid one (another service's kind, two signers'
// worth of auth, a bad signature or body) is refused as invalid and
// writes nothing.
func TestApply(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	apply := func(rec []byte) error {
		return st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec) })
	}
	k, err := record.GenerateKey(record.P256)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(kind record.Kind, body []byte) []byte {
		r, err := record.Sign(kind, body, k)
		if err != nil {
			t.Fatal(err)
		}
		return r.Marshal()
	}
	add := (&api.CounterAdd{Counter: "visits", Delta: 4}).Marshal()
	if err := apply(sign(Kind, add)); err != nil {
		t.Fatal(err)
	}
	// The same body signed again (P-256 signatures differ each time).
	if err := apply(sign(Kind, add)); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("the same add again: %v", err)
	}
	badSig := sign(Kind, (&api.CounterAdd{Counter: "visits", Delta: 1}).Marshal())
	badSig[len(badSig)-1] ^= 1
	k2, _ := record.GenerateKey(record.Ed25519)
	two, err := record.SignQuorum(Kind, (&api.CounterAdd{Counter: "visits", Delta: 1}).Marshal(), k, k2)
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{
		"auth's kind":   sign(record.ScopeCreate, add),
		"bad signature": badSig,
		"two signers":   two.Marshal(),
		"delta 0":       sign(Kind, (&api.CounterAdd{Counter: "visits"}).Marshal()),
		"not a record":  []byte("junk"),
	} {
		if err := apply(rec); !errors.Is(err, replica.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if v, err := value(ctx, st, "visits"); err != nil || v != 4 {
		t.Fatalf("value %d %v, want 4", v, err)
	}
	es, err := st.List(ctx, nsApplied, "", 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("%d applied records, want 1: %v", len(es), err)
	}
}
