package vaultsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

var errRollback = errors.New("roll back")

func dumpTx(ctx context.Context, tx store.Ops) (string, error) {
	var sb strings.Builder
	for _, ns := range []string{nsBox, nsGrant, nsGranted, nsReceived, nsRevoked, nsRevokeBy, nsApplied} {
		es, err := tx.List(ctx, ns, "", 0)
		if err != nil {
			return "", err
		}
		for _, e := range es {
			fmt.Fprintf(&sb, "%s %s %x\n", ns, e.Key, e.Value)
		}
	}
	return sb.String(), nil
}

// FuzzApply feeds the Applier whatever bytes a malicious peer could push,
// against a state with a scope, two accounts, a box and a timelocked
// grant: it never panics, and a record it refuses writes nothing.
func FuzzApply(f *testing.F) {
	w := newWorld(f)
	st := openStore(f)
	for _, rec := range w.auth {
		if err := apply(st, rec); err != nil {
			f.Fatal(err)
		}
	}
	if err := apply(st, w.box(f, 1, w.alice)); err != nil {
		f.Fatal(err)
	}
	g, gid := w.grant(f, 1, 1000)
	if err := apply(st, g); err != nil {
		f.Fatal(err)
	}
	f.Add(w.box(f, 2, w.alice))
	g2, _ := w.grant(f, 1, 0)
	f.Add(g2)
	f.Add(w.revoke(f, gid, 1000, "alice", w.alice))
	f.Add(w.revoke(f, gid, 999, "alice", w.alice))
	f.Fuzz(func(t *testing.T, rec []byte) {
		ctx := context.Background()
		err := st.Update(ctx, func(tx store.Ops) error {
			before, err := dumpTx(ctx, tx)
			if err != nil {
				return err
			}
			aerr := Applier{}.Apply(ctx, tx, rec)
			if aerr == nil {
				return errRollback
			}
			if !errors.Is(aerr, replica.ErrInvalid) && !errors.Is(aerr, replica.ErrDuplicate) {
				t.Errorf("an error that is neither invalid nor duplicate: %v", aerr)
			}
			after, err := dumpTx(ctx, tx)
			if err != nil {
				return err
			}
			if after != before {
				t.Errorf("a refused record wrote (%v)", aerr)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
	})
}
