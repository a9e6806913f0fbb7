package replica

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/store"
)

// proofApplier identifies a record by its content, as package auth does:
// a record is proof ‖ '|' ‖ change, and a change already applied (under
// any proof) is ErrDuplicate.
type proofApplier struct{}

func (proofApplier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	i := 0
	for i < len(rec) && rec[i] != '|' {
		i++
	}
	if i == len(rec) {
		return fmt.Errorf("%w: no change", ErrInvalid)
	}
	change := string(rec[i+1:])
	if _, err := tx.Get(ctx, nsState, change); err == nil {
		return fmt.Errorf("change %q: %w", change, ErrDuplicate)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return tx.Put(ctx, nsState, change, rec)
}

// TestDuplicateProofsDropped: a second proof of an applied change (a
// re-signed copy, or one with a garbage proof) is acknowledged but
// neither stored nor replicated, whether it is submitted, pushed by a
// peer, or slipped into a peer's log for catch-up. Before, every copy was
// appended to every node's log (unbounded growth, no signature needed).
func TestDuplicateProofsDropped(t *testing.T) {
	c := newCluster(t)
	for i := range c.nodes {
		c.stop(i)
		c.start(i, nil, proofApplier{}, true)
	}
	c.waitLinks()
	ctx := context.Background()
	first := []byte("good-proof|k=v")
	if err := c.nodes[0].r.Submit(ctx, first); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		eventually(t, "first proof on every node", func() error {
			if !c.has(i, first) {
				return fmt.Errorf("node %d lacks it", i+1)
			}
			return nil
		})
	}
	copyRec := []byte("garbage-proof|k=v")
	if err := c.nodes[0].r.Submit(ctx, copyRec); err != nil {
		t.Fatalf("submitting a second proof: %v", err)
	}
	pushed := []byte("pushed-proof|k=v")
	if _, err := c.nodes[1].tr.Call(ctx, 3, kindPush, encodePush(pushed)); err != nil {
		t.Fatalf("pushing a second proof: %v", err)
	}
	slipped := []byte("slipped-proof|k=v")
	if err := c.nodes[0].st.Update(ctx, func(tx store.Ops) error {
		_, err := tx.Append(ctx, LogStream, slipped)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		if err := c.nodes[i].r.CatchUp(ctx); err != nil {
			t.Fatalf("node %d catch-up: %v", i+1, err)
		}
	}
	for i := range c.nodes {
		for _, rec := range [][]byte{copyRec, pushed, slipped} {
			if c.has(i, rec) {
				t.Errorf("node %d stored %q", i+1, rec)
			}
		}
		if n := len(c.ids(i)); n != 1 && !(i == 0 && n == 2) { // node 1's own log holds what we slipped in
			t.Errorf("node %d log has %d records", i+1, n)
		}
	}
}
