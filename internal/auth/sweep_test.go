package auth

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/store"
)

// listCounting is a store that records the most entries one List of the
// nonce namespace returned.
type listCounting struct {
	store.Store
	most atomic.Int64
}

func (l *listCounting) List(ctx context.Context, ns, prefix string, limit int) ([]store.Entry, error) {
	es, err := l.Store.List(ctx, ns, prefix, limit)
	if ns == nsNonce && int64(len(es)) > l.most.Load() {
		l.most.Store(int64(len(es)))
	}
	return es, err
}

// TestSweepNoncesPages (issue 16): SweepNonces never loads more than a
// page of nonces at once, however many the store holds (here 3,000 in two
// scopes, a page of 50, so that prefixes are split twice), and deletes
// exactly the expired ones. Before, it listed the whole namespace: the
// test saw 3,000 entries in one List.
func TestSweepNoncesPages(t *testing.T) {
	defer func(p int) { sweepPage = p }(sweepPage)
	sweepPage = 50
	st := &listCounting{Store: openStore(t)}
	c := &clock{t: time.Now()}
	svc, err := New(Options{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := c.now().Unix()
	live := map[string]bool{}
	err = st.Update(ctx, func(tx store.Ops) error {
		for i := range 3000 {
			scope := "0123456789abcdef0123456789abcdef"
			if i%3 == 0 {
				scope = "fedcba9876543210fedcba9876543210"
			}
			var nonce [32]byte
			rand.Read(nonce[:])
			key := scope + "/" + hex.EncodeToString(nonce[:])
			val := make([]byte, 48, 56)
			expiry := now - 10
			if i%4 == 0 {
				expiry = now + 600
				live[key] = true
			}
			val = binary.BigEndian.AppendUint64(val, uint64(expiry))
			if err := tx.Put(ctx, nsNonce, key, val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.most.Store(0)
	if err := svc.SweepNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if m := st.most.Load(); m > int64(sweepPage)+1 {
		t.Fatalf("one List returned %d nonces; page %d", m, sweepPage)
	}
	es, err := st.Store.List(ctx, nsNonce, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(live) {
		t.Fatalf("%d nonces left, want the %d unexpired", len(es), len(live))
	}
	for _, e := range es {
		if !live[e.Key] {
			t.Fatalf("expired nonce %s kept", e.Key)
		}
	}
	// A cancelled sweep stops and says so.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := svc.SweepNonces(cctx); err == nil {
		t.Fatal("a cancelled sweep reported success")
	}
}
