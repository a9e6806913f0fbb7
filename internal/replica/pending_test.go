package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/store"
)

// depApplier applies "name" records, and "name<parent" records once
// parent is applied (ErrMissing before).
type depApplier struct{}

func (depApplier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	name, parent, child := strings.Cut(string(rec), "<")
	if child {
		if _, err := tx.Get(ctx, nsState, parent); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s needs %s: %w", name, parent, errors.Join(ErrInvalid, ErrMissing))
		} else if err != nil {
			return err
		}
	}
	return tx.Put(ctx, nsState, name, rec)
}

// slip appends recs to node i's log directly, as a node that applied
// them (or a malicious one) would serve them.
func (c *cluster) slip(t *testing.T, i int, recs ...[]byte) {
	t.Helper()
	if err := c.nodes[i].st.Update(context.Background(), func(tx store.Ops) error {
		for _, r := range recs {
			if _, err := tx.Append(context.Background(), LogStream, r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMissingDependencyKeptAndRetried: a peer serves a child before its
// parent; catch-up keeps the child instead of skipping it for good, and
// applies it once the parent is applied. Before, the child was skipped
// and never seen again (the cursor had moved past it).
func TestMissingDependencyKeptAndRetried(t *testing.T) {
	c := newCluster(t)
	for i := range c.nodes {
		c.stop(i)
		c.start(i, nil, depApplier{}, false)
	}
	c.waitLinks()
	ctx := context.Background()
	child, parent := []byte("child<parent"), []byte("parent")
	c.slip(t, 0, child)
	if err := c.nodes[1].r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if c.has(1, child) {
		t.Fatal("child applied without its parent")
	}
	if n, err := c.nodes[1].r.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("pending: %d %v", n, err)
	}
	c.slip(t, 2, parent) // the parent comes from another peer
	if err := c.nodes[1].r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.has(1, parent) || !c.has(1, child) {
		t.Fatal("child not applied after its parent arrived")
	}
	if n, _ := c.nodes[1].r.Pending(ctx); n != 0 {
		t.Fatalf("%d records still pending", n)
	}
}

// TestCatchUpBoundedPerRound: a peer whose log keeps growing cannot keep
// one catch-up round going: a round takes at most MaxCatchUpBatches
// answers, and the next resumes at the cursor.
func TestCatchUpBoundedPerRound(t *testing.T) {
	c := newCluster(t)
	for i := range c.nodes {
		c.stop(i)
		c.start(i, nil, depApplier{}, false)
	}
	c.waitLinks()
	ctx := context.Background()
	n := MaxCatchUpBatches*MaxBatch + 10
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, "r%d", i)
	}
	c.slip(t, 0, recs...)
	if err := c.nodes[1].r.catchUpPeer(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := len(c.ids(1)); got != MaxCatchUpBatches*MaxBatch {
		t.Fatalf("one round applied %d records, want %d", got, MaxCatchUpBatches*MaxBatch)
	}
	if err := c.nodes[1].r.catchUpPeer(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := len(c.ids(1)); got != n {
		t.Fatalf("two rounds applied %d records, want %d", got, n)
	}
}

// TestPushedChildKeptUntilParentPushed: a peer pushes a child whose
// parent no node has yet; the receiver refuses it but keeps it, and
// applies it (in the background) once the parent is pushed to it by
// another node's Submit.
func TestPushedChildKeptUntilParentPushed(t *testing.T) {
	c := newCluster(t)
	for i := range c.nodes {
		c.stop(i)
		c.start(i, nil, depApplier{}, false)
	}
	c.waitLinks()
	ctx := context.Background()
	child, parent := []byte("kid<mum"), []byte("mum")
	if _, err := c.nodes[0].tr.Call(ctx, 2, kindPush, encodePush(child)); err == nil {
		t.Fatal("a child without its parent was acknowledged")
	}
	if n, err := c.nodes[1].r.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("pending: %d %v", n, err)
	}
	if err := c.nodes[2].r.Submit(ctx, parent); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the kept child applied on node 2", func() error {
		if !c.has(1, child) {
			return errors.New("not yet")
		}
		return nil
	})
	if n, _ := c.nodes[1].r.Pending(ctx); n != 0 {
		t.Fatalf("%d records still pending", n)
	}
}
