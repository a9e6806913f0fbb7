package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/storetest"
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string) store.Store {
		return open(t, filepath.Join(dir, name+".sqlite"))
	})
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db := open(t, path)
	if err := db.Put(ctx, "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(ctx, "s", []byte("r")); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	db.Close()

	// Reopen: migrations are not re-run (they would fail on CREATE TABLE)
	// and the data is still there.
	db = open(t, path)
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, _ := store.LoadMigrations(migrationFS, "migrations")
	if n != len(ms) || n == 0 {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	v, err := db.Get(ctx, "ns", "k")
	if err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	rs, err := db.Records(ctx, "s", 0, 0)
	if err != nil || len(rs) != 1 || string(rs[0].Data) != "r" {
		t.Fatalf("after reopen: %+v, %v", rs, err)
	}
}

func TestWALMode(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	var mode string
	if err := db.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q", mode)
	}
	// The read pool is read-only.
	if _, err := db.r.Exec(`INSERT INTO kv (ns, key, value) VALUES ('a', 'b', x'00')`); err == nil {
		t.Fatal("write through the read pool succeeded")
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "db.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	v := make([]byte, 256)
	i := 0
	for b.Loop() {
		if err := db.Put(ctx, "bench", fmt.Sprint(i), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "db.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := db.Put(ctx, "bench", "k", make([]byte, 256)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}
