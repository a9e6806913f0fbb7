// Package storetest is the conformance suite every store.Store backend
// runs, so that SQLite and PostgreSQL behave the same: key/value semantics
// and prefix listing (including 0xff bytes), record ordering and paging,
// transaction rollback, and read-modify-write transactions from concurrent
// goroutines and handles without lost updates.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keymesh/keymesh/internal/store"
)

// Opener returns a migrated store for the test. Calls with the same name
// within one test return new handles on the same database (as two
// processes would have); different names are different databases. The
// Opener closes what it returns when the test ends.
type Opener func(t *testing.T, name string) store.Store

// Run runs the suite against the backend that open creates.
func Run(t *testing.T, open Opener) {
	t.Run("KV", func(t *testing.T) { testKV(t, open) })
	t.Run("List", func(t *testing.T) { testList(t, open) })
	t.Run("Records", func(t *testing.T) { testRecords(t, open) })
	t.Run("UpdateRollback", func(t *testing.T) { testUpdateRollback(t, open) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, open) })
	t.Run("MigrateAgain", func(t *testing.T) { testMigrateAgain(t, open) })
}

// testMigrateAgain: Migrate on a store in use is a no-op that keeps data.
func testMigrateAgain(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, "migrate")
	if err := db.Put(ctx, "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if v, err := open(t, "migrate").Get(ctx, "ns", "k"); err != nil || string(v) != "v" {
		t.Fatalf("after Migrate: %q %v", v, err)
	}
}

func testKV(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, "kv")

	if _, err := db.Get(ctx, "ns", "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Put(ctx, "ns", "a", []byte("1")))
	must(db.Put(ctx, "ns", "a", []byte("2"))) // replace
	must(db.Put(ctx, "other", "a", []byte("x")))
	must(db.Put(ctx, "ns", "empty", nil))
	if v, err := db.Get(ctx, "ns", "a"); err != nil || string(v) != "2" {
		t.Fatalf("Get a: %q %v", v, err)
	}
	if v, err := db.Get(ctx, "other", "a"); err != nil || string(v) != "x" {
		t.Fatalf("namespaces are not separate: %q %v", v, err)
	}
	if v, err := db.Get(ctx, "ns", "empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %q %v", v, err)
	}
	must(db.Delete(ctx, "ns", "a"))
	must(db.Delete(ctx, "ns", "a")) // absent: not an error
	if _, err := db.Get(ctx, "ns", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := db.Get(ctx, "other", "a"); err != nil {
		t.Fatalf("delete crossed namespaces: %v", err)
	}

	// Bad input changes nothing.
	if err := db.Put(ctx, "", "k", nil); err == nil {
		t.Error("empty namespace accepted")
	}
	if err := db.Put(ctx, "ns", strings.Repeat("k", store.MaxKeyLen+1), nil); err == nil {
		t.Error("long key accepted")
	}
}

func testList(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, "list")
	keys := []string{"acc/2", "acc/1", "acc/10", "acc0", "ac", "b", "\xff", "\xff\xff", "\xff\x00"}
	for _, k := range keys {
		if err := db.Put(ctx, "ns", k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Put(ctx, "zz", "acc/3", nil); err != nil {
		t.Fatal(err)
	}
	list := func(prefix string, limit int) string {
		t.Helper()
		es, err := db.List(ctx, "ns", prefix, limit)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, e := range es {
			if !bytes.Equal(e.Value, []byte("v"+e.Key)) {
				t.Fatalf("value of %q is %q", e.Key, e.Value)
			}
			ks = append(ks, fmt.Sprintf("%q", e.Key))
		}
		return strings.Join(ks, " ")
	}
	for _, c := range []struct {
		prefix string
		limit  int
		want   string
	}{
		{"acc/", 0, `"acc/1" "acc/10" "acc/2"`},
		{"acc/", 2, `"acc/1" "acc/10"`},
		{"acc", 0, `"acc/1" "acc/10" "acc/2" "acc0"`},
		{"\xff", 0, `"\xff" "\xff\x00" "\xff\xff"`},
		{"\xff\xff", 0, `"\xff\xff"`},
		{"nothing", 0, ``},
		{"", 3, `"ac" "acc/1" "acc/10"`},
	} {
		if got := list(c.prefix, c.limit); got != c.want {
			t.Errorf("List(%q, %d) = %s, want %s", c.prefix, c.limit, got, c.want)
		}
	}
}

func testRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, "records")
	var ids []int64
	for i := range 5 {
		for _, s := range []string{"a", "b"} {
			id, err := db.Append(ctx, s, []byte(fmt.Sprintf("%s%d", s, i)))
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && id <= ids[len(ids)-1] {
				t.Fatalf("IDs not increasing: %d after %d", id, ids[len(ids)-1])
			}
			ids = append(ids, id)
		}
	}
	rs, err := db.Records(ctx, "a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("%d records", len(rs))
	}
	for i, r := range rs {
		if string(r.Data) != fmt.Sprintf("a%d", i) || r.Stream != "a" || r.ID != ids[2*i] || r.Created.IsZero() {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	rs, err = db.Records(ctx, "a", ids[4], 2) // after a2: a3, a4 but limit 2
	if err != nil || len(rs) != 2 || string(rs[0].Data) != "a3" || string(rs[1].Data) != "a4" {
		t.Fatalf("paging: %+v %v", rs, err)
	}
}

func testUpdateRollback(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, "update")
	boom := errors.New("boom")
	err := db.Update(ctx, func(tx store.Ops) error {
		if err := tx.Put(ctx, "ns", "k", []byte("v")); err != nil {
			return err
		}
		if _, err := tx.Append(ctx, "s", []byte("r")); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if v, err := tx.Get(ctx, "ns", "k"); err != nil || string(v) != "v" {
			t.Errorf("read own write: %q %v", v, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v", err)
	}
	if _, err := db.Get(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back Put visible: %v", err)
	}
	if rs, _ := db.Records(ctx, "s", 0, 0); len(rs) != 0 {
		t.Fatalf("rolled-back Append visible: %+v", rs)
	}

	if err := db.Update(ctx, func(tx store.Ops) error {
		return tx.Put(ctx, "ns", "k", []byte("committed"))
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(ctx, "ns", "k"); err != nil || string(v) != "committed" {
		t.Fatalf("committed Put: %q %v", v, err)
	}
}

// testConcurrentWriters runs read-modify-write transactions from many
// goroutines and from two handles on the same file (as two processes would):
// no update is lost and no call fails with SQLITE_BUSY.
func testConcurrentWriters(t *testing.T, open Opener) {
	ctx := context.Background()
	dbs := []store.Store{open(t, "concurrent"), open(t, "concurrent")}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		db := dbs[w%2]
		wg.Go(func() {
			for i := range each {
				err := db.Update(ctx, func(tx store.Ops) error {
					n := 0
					if v, err := tx.Get(ctx, "ns", "counter"); err == nil {
						fmt.Sscan(string(v), &n)
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if err := tx.Put(ctx, "ns", "counter", []byte(fmt.Sprint(n+1))); err != nil {
						return err
					}
					_, err := tx.Append(ctx, "log", []byte(fmt.Sprintf("%d/%d", w, i)))
					return err
				})
				if err != nil {
					errs <- err
				}
				// Reads run beside the writers.
				if _, err := db.Records(ctx, "log", 0, 1); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	v, err := dbs[0].Get(ctx, "ns", "counter")
	if err != nil || string(v) != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %q (%v), want %d", v, err, workers*each)
	}
	rs, err := dbs[1].Records(ctx, "log", 0, 0)
	if err != nil || len(rs) != workers*each {
		t.Fatalf("%d records (%v), want %d", len(rs), err, workers*each)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[string(r.Data)] {
			t.Fatalf("duplicate record %q", r.Data)
		}
		seen[string(r.Data)] = true
	}
}
