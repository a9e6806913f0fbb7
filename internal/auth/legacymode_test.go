package auth

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// TestLegacyAccountModeOrders: an account stored before accounts recorded
// their mode (its value is how ‖ time, 9 bytes, and no registration is
// kept) has the same mode on every store whatever order the scope's
// updates arrive in: the scope's base config's (registeredMode). Updates
// move the scope to developer and hybrid mode, two of them tied at one
// seq and one not on the chain (signed by a key removed before it);
// every permutation of them is applied on its own store, for
// a scope created by this build and for one stored by an older build
// (no base config: its first update stores the config it replaces as the
// base). Builds before registeredMode's rule pinned the mode at the first
// mode-changing update each node applied; that gave the base config's
// mode too (this test passes on them), at the cost of rewriting every
// such account of the scope in the update's transaction.
func TestLegacyAccountModeOrders(t *testing.T) {
	ctx := context.Background()
	d0, d1, d2 := key(t, record.Ed25519), key(t, record.Ed25519), key(t, record.Ed25519)
	base := record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{d0.Public(), d1.Public(), d2.Public()}, DevQuorum: 1}
	sc := &record.ScopeCreateBody{Config: base}
	scope := sc.ScopeID()
	update := func(seq uint64, m record.Mode, keys []*record.PrivateKey, signer *record.PrivateKey) []byte {
		c := base
		c.Mode = m
		c.DevKeys = nil
		for _, k := range keys {
			c.DevKeys = append(c.DevKeys, k.Public())
		}
		return must(record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: seq, Config: c}).Marshal(), signer)).Marshal()
	}
	all := []*record.PrivateKey{d0, d1, d2}
	updates := [][]byte{
		update(1, record.ModeDeveloper, all, d0),
		update(1, record.ModeHybrid, all, d1),                          // tied at seq 1
		update(2, record.ModeHybrid, []*record.PrivateKey{d0, d1}, d0), // removes d2
		update(3, record.ModeDeveloper, all, d2),                       // by d2, removed at seq 2: stored, not on the chain
	}
	legacy := binary.BigEndian.AppendUint64([]byte{regDelegated}, 1) // how ‖ time

	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("older scope %v", older), func(t *testing.T) {
			var first record.Mode
			var firstSeq uint64
			n := 0
			permute(len(updates), func(order []int) {
				st := openStore(t)
				err := st.Update(ctx, func(tx store.Ops) error {
					if older {
						// As an older build stored it: no base config.
						return tx.Put(ctx, nsScope, scope, scopeValue(0, &base))
					}
					return Applier{}.Apply(ctx, tx, must(record.Sign(record.ScopeCreate, sc.Marshal(), d0)).Marshal())
				})
				if err == nil {
					err = st.Update(ctx, func(tx store.Ops) error { return tx.Put(ctx, nsAccount, acctKey(scope, "old"), legacy) })
				}
				if err != nil {
					t.Fatal(err)
				}
				var recs [][]byte
				for _, i := range order {
					recs = append(recs, updates[i])
				}
				applyAll(t, st, recs)
				s := State{st}
				seq, cfg, err := s.Scope(ctx, scope)
				if err != nil {
					t.Fatal(err)
				}
				m, err := s.AccountMode(ctx, scope, "old", cfg)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					first, firstSeq = m, seq
				} else if m != first || seq != firstSeq {
					t.Fatalf("order %v: account mode %v at scope seq %d; the first order gave %v at %d", order, m, seq, first, firstSeq)
				}
				n++
			})
			if first != base.Mode {
				t.Fatalf("the account's mode is %v, want the base config's %v", first, base.Mode)
			}
			if firstSeq != 2 {
				t.Fatalf("scope at seq %d, want 2", firstSeq)
			}
			t.Logf("%d orders: mode %v", n, first)
		})
	}
}

// permute calls f with every permutation of 0…n-1.
func permute(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}
