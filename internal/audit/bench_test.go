package audit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// BenchmarkAppend measures what the audit log adds to a signature on a
// node with its SQLite store (WAL, synchronous=NORMAL): one transaction
// that reads the chain's end and writes the entry and the new end.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "keymesh.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	l := NewLog(db)
	e := sample(1)
	for b.Loop() {
		if _, err := l.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntryHash measures encoding and hashing one entry (the CPU part
// of Append and of Verify's walk).
func BenchmarkEntryHash(b *testing.B) {
	e := sample(1)
	e.Seq = 1
	e.normalize()
	for b.Loop() {
		_ = e.Hash()
	}
}
