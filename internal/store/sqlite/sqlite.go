// Package sqlite is the embedded SQLite backend of package store, built on
// modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode (https://sqlite.org/wal.html) so that
// readers never block the writer, with a busy timeout so that a second
// process or connection waits instead of failing with SQLITE_BUSY. Writes go
// through a pool of one connection and transactions start with BEGIN
// IMMEDIATE, so writers queue in Go instead of deadlocking in SQLite's lock
// upgrade; reads use a separate read-only pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/keymesh/keymesh/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// connection or process before giving up.
const busyTimeout = 10 * time.Second

// DB is a store.Store backed by one SQLite file.
type DB struct {
	w, r *sql.DB
	ops
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path. Call Migrate
// before using it.
//
// The file, and its -wal and -shm files, are readable by their owner only
// (mode 0600): Open creates the file so before SQLite opens it (SQLite gives
// the -wal and -shm files the database file's mode) and takes group and
// other permissions away from files that have them (a database created by
// an older keymesh, with 0644).
func Open(path string) (*DB, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a file path is required")
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	pragma := func(ps ...string) string {
		q := url.Values{}
		for _, p := range ps {
			q.Add("_pragma", p)
		}
		return q.Encode()
	}
	bt := fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", base+"?"+pragma(bt, "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	// The writer connects first, so the file exists and is in WAL mode
	// before any reader opens it.
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?"+pragma(bt, "query_only(1)", "foreign_keys(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	db := &DB{w: w, r: r}
	db.ops = ops{r: r, w: w}
	return db, nil
}

// ownerOnly creates path with mode 0600 if it does not exist, and removes
// group and other permissions from it and its -wal and -shm files if it
// does.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		} else if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if m := st.Mode().Perm(); m&0o077 != 0 {
			if err := os.Chmod(p, m&0o700); err != nil {
				return fmt.Errorf("sqlite: make %s owner-only: %w", p, err)
			}
		}
	}
	return nil
}

// Close closes both connection pools.
func (db *DB) Close() error {
	return errors.Join(db.w.Close(), db.r.Close())
}

// Migrate applies the embedded migrations that have not been applied yet,
// each in its own transaction with the row recording it in
// schema_migrations. Running it again is a no-op.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: creating schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := db.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, m store.Migration) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UTC().UnixMicro()); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	return nil
}

// Update runs fn in one write transaction (BEGIN IMMEDIATE). fn must use
// only tx: calling a write method of db from inside fn would wait forever
// for the single writer connection that fn itself holds.
func (db *DB) Update(ctx context.Context, fn func(tx store.Ops) error) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(ops{r: tx, w: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}
