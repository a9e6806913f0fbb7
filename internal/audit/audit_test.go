package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/postgres"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// backends runs f on a fresh SQLite store and on a fresh PostgreSQL schema
// ($KEYMESH_TEST_POSTGRES; skipped with a message when unset). open returns
// a new connection to the same database each call (a restart).
func backends(t *testing.T, f func(t *testing.T, open func() store.Store)) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keymesh.db")
		f(t, func() store.Store {
			db, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("KEYMESH_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL tests need a server: set KEYMESH_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/test sets it when one answers on 127.0.0.1:5432)")
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "km_test_audit_" + hex.EncodeToString(b[:])
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close(context.Background()) })
		if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := admin.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
				t.Errorf("dropping schema %s: %v", schema, err)
			}
		})
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		f(t, func() store.Store {
			db, err := postgres.Open(ctx, u.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

func sample(i int) Entry {
	e := Entry{Kind: KindSign, Scope: "scope-a", Account: "acct-" + string(rune('a'+i%26)), Method: "personal_sign",
		Signers: []uint16{2, 1}, Keys: []string{"session:0011223344556677"}, Outcome: OutcomeOK}
	e.OpHash[0], e.Request[0] = byte(i), byte(i)
	return e
}

// chain appends n entries to a new log in st and returns it.
func chain(t *testing.T, st store.Store, n int) *Log {
	t.Helper()
	l := NewLog(st)
	for i := range n {
		if _, err := l.Append(context.Background(), sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// signed signs l's head as node 1 and returns it, verified.
func signed(t *testing.T, l *Log, id ed25519.PrivateKey) *SignedHead {
	t.Helper()
	sh, err := l.SignHead(context.Background(), "c1", 1, id)
	if err != nil || sh == nil {
		t.Fatalf("sign head: %v %v", sh, err)
	}
	return sh
}

func wantBad(t *testing.T, rep *Report, seq uint64, words string) {
	t.Helper()
	if rep.OK() || rep.FirstBad() != seq {
		t.Fatalf("want entry %d named, got first bad %d: %v", seq, rep.FirstBad(), rep.Problems)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || strings.Contains(p.String(), words)
	}
	if !found {
		t.Fatalf("want a problem saying %q: %v", words, rep.Problems)
	}
}

// TestTamperDetected plays the node's operator editing its own store: a
// modified, a deleted and a reordered entry, a truncated chain, and a
// whole chain rewritten consistently after a head was signed are each
// named by Verify, and an untouched chain passes.
func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	pub, id, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		build := func(t *testing.T) (store.Store, []*SignedHead) {
			st := open()
			// Each subtest gets its own chain: clear what an earlier one left.
			for _, ns := range []string{nsChain, nsMeta} {
				es, _ := st.List(ctx, ns, "", 0)
				for _, e := range es {
					st.Delete(ctx, ns, e.Key)
				}
			}
			l := chain(t, st, 5)
			h5 := signed(t, l, id)
			for i := 5; i < 10; i++ {
				l.Append(ctx, sample(i))
			}
			return st, []*SignedHead{h5, signed(t, l, id)}
		}
		verify := func(t *testing.T, st store.Store, heads []*SignedHead) *Report {
			rep, err := Verify(ctx, st, 1, pub, heads)
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}
		t.Run("untouched", func(t *testing.T) {
			st, heads := build(t)
			if rep := verify(t, st, heads); !rep.OK() || rep.Entries != 10 || rep.Matched != 10 || rep.Heads != 2 {
				t.Fatalf("%+v", rep)
			}
		})
		t.Run("modified", func(t *testing.T) {
			st, heads := build(t)
			b, _ := st.Get(ctx, nsChain, chainKey(4))
			e, _ := DecodeEntry(b)
			e.Outcome = OutcomeRefused // the operator hides a refusal… or invents one
			st.Put(ctx, nsChain, chainKey(4), e.Marshal())
			wantBad(t, verify(t, st, heads), 4, "changed")
		})
		t.Run("modified-last", func(t *testing.T) {
			st, heads := build(t)
			b, _ := st.Get(ctx, nsChain, chainKey(10))
			e, _ := DecodeEntry(b)
			e.Account = "someone-else"
			st.Put(ctx, nsChain, chainKey(10), e.Marshal())
			wantBad(t, verify(t, st, heads[:1]), 10, "changed")
		})
		t.Run("deleted", func(t *testing.T) {
			st, heads := build(t)
			st.Delete(ctx, nsChain, chainKey(6))
			wantBad(t, verify(t, st, heads), 6, "missing")
		})
		t.Run("reordered", func(t *testing.T) {
			st, heads := build(t)
			a, _ := st.Get(ctx, nsChain, chainKey(3))
			b, _ := st.Get(ctx, nsChain, chainKey(4))
			st.Put(ctx, nsChain, chainKey(3), b)
			st.Put(ctx, nsChain, chainKey(4), a)
			wantBad(t, verify(t, st, heads), 3, "reordered")
		})
		t.Run("truncated", func(t *testing.T) {
			st, heads := build(t)
			// Drop 8..10 and set the recorded end to 7: the chain is
			// whole, only the peers' head at 10 says otherwise.
			b7, _ := st.Get(ctx, nsChain, chainKey(7))
			for s := uint64(8); s <= 10; s++ {
				st.Delete(ctx, nsChain, chainKey(s))
			}
			st.Put(ctx, nsMeta, metaHead, encodeEnd(7, hashEncoding(b7)))
			wantBad(t, verify(t, st, heads), 8, "truncated")
		})
		t.Run("rewritten", func(t *testing.T) {
			st, heads := build(t)
			// The node rebuilds its whole chain from entry 7 on, with
			// entry 7 removed, through the log itself: every link holds.
			b6, _ := st.Get(ctx, nsChain, chainKey(6))
			for s := uint64(7); s <= 10; s++ {
				st.Delete(ctx, nsChain, chainKey(s))
			}
			st.Put(ctx, nsMeta, metaHead, encodeEnd(6, hashEncoding(b6)))
			l := NewLog(st)
			for i := 7; i < 11; i++ {
				if _, err := l.Append(ctx, sample(i)); err != nil {
					t.Fatal(err)
				}
			}
			rep := verify(t, st, nil)
			if !rep.OK() || len(rep.Warnings) == 0 {
				t.Fatalf("without heads a consistent rewrite cannot show: %+v", rep)
			}
			wantBad(t, verify(t, st, heads), 6, "rewritten")
		})
		t.Run("forged-head", func(t *testing.T) {
			st, heads := build(t)
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			forged, _ := SignHead(heads[1].Head, other)
			rep := verify(t, st, []*SignedHead{forged})
			if rep.OK() || !strings.Contains(rep.Problems[0].Msg, "signature does not verify") {
				t.Fatalf("%+v", rep)
			}
		})
	})
}

// TestSurvivesRestart: entries appended, the store closed and opened
// again (a node restart), more appended: one chain, verified against a
// head signed before the restart.
func TestSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	pub, id, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		st := open()
		h := signed(t, chain(t, st, 3), id)
		st.Close()
		st = open()
		l := NewLog(st)
		if e, err := l.Append(ctx, sample(3)); err != nil || e.Seq != 4 {
			t.Fatalf("append after restart: %+v %v", e, err)
		}
		rep, err := Verify(ctx, st, 1, pub, []*SignedHead{h})
		if err != nil || !rep.OK() || rep.Entries != 4 || rep.Matched != 3 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

// TestConcurrentAppends: appends from many goroutines (and, on
// PostgreSQL, two connections as two processes would) form one chain.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	pub, id, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		logs := []*Log{NewLog(open()), NewLog(open())}
		done := make(chan error)
		for g := range 8 {
			go func() {
				var err error
				for i := range 5 {
					if _, e := logs[g%2].Append(ctx, sample(g*5+i)); e != nil && err == nil {
						err = e
					}
				}
				done <- err
			}()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		st := open()
		rep, err := Verify(ctx, st, 1, pub, []*SignedHead{signed(t, NewLog(st), id)})
		if err != nil || !rep.OK() || rep.Entries != 40 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

// TestHeadStore: a peer keeps a bounded, sparse history of a node's heads
// and refuses heads that contradict it (truncation, another hash).
func TestHeadStore(t *testing.T) {
	ctx := context.Background()
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		hs := NewHeadStore(open())
		mk := func(seq uint64, tag byte) *SignedHead {
			sh, err := SignHead(Head{Cluster: "c1", Node: 3, Seq: seq, Hash: [32]byte{tag, byte(seq)}, Time: time.Now()}, id)
			if err != nil {
				t.Fatal(err)
			}
			return sh
		}
		for s := uint64(1); s <= 300; s++ {
			if err := hs.Keep(ctx, mk(s, 0)); err != nil {
				t.Fatal(err)
			}
		}
		held, err := hs.Heads(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) > keepLatest+9 || held[len(held)-1].Seq != 300 || held[0].Seq != 1 {
			t.Fatalf("held %d heads, first %d, last %d", len(held), held[0].Seq, held[len(held)-1].Seq)
		}
		if err := hs.Keep(ctx, mk(300, 0)); err != nil {
			t.Fatalf("the same head again: %v", err)
		}
		if err := hs.Keep(ctx, mk(300, 9)); !errorsIs(err, ErrHeadConflict) {
			t.Fatalf("another hash at a held seq: %v", err)
		}
		if err := hs.Keep(ctx, mk(150, 0)); !errorsIs(err, ErrHeadConflict) {
			t.Fatalf("a lower seq signed later (truncated): %v", err)
		}
		late, _ := SignHead(Head{Cluster: "c1", Node: 3, Seq: 151, Hash: [32]byte{1}, Time: time.Now().Add(-time.Hour)}, id)
		if err := hs.Keep(ctx, late); err != nil {
			t.Fatalf("a late message: %v", err)
		}
		if again, _ := hs.Heads(ctx, 3); len(again) != len(held) || again[len(again)-1].Hash != held[len(held)-1].Hash {
			t.Fatal("a refused head changed what is held")
		}
	})
}

// TestEntryRoundTrip: Marshal and DecodeEntry agree, and decoding refuses
// non-canonical input.
func TestEntryRoundTrip(t *testing.T) {
	e := sample(1)
	e.Seq, e.Time, e.Code = 7, time.Unix(1700000000, 123).UTC(), -32003
	e.normalize()
	enc := e.Marshal()
	d, err := DecodeEntry(enc)
	if err != nil || string(d.Marshal()) != string(enc) || d.Hash() != e.Hash() {
		t.Fatalf("%v", err)
	}
	bad := e
	bad.Signers = []uint16{2, 1} // not ascending
	if _, err := DecodeEntry(bad.Marshal()); !errorsIs(err, ErrMalformed) {
		t.Fatal("unsorted signers accepted")
	}
	if _, err := DecodeEntry(append(enc, 0)); !errorsIs(err, ErrMalformed) {
		t.Fatal("trailing byte accepted")
	}
	bad = e
	bad.Outcome = "maybe"
	if _, err := DecodeEntry(bad.Marshal()); !errorsIs(err, ErrMalformed) {
		t.Fatal("unknown outcome accepted")
	}
}
