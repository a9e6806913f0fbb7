// Package postgres is the PostgreSQL backend of package store, for
// production nodes, built on pgx/v5's connection pool (pgxpool).
//
// It behaves as the SQLite backend does (both pass storetest.Run):
//
//   - Namespaces, keys and stream names are stored as bytea, so any byte
//     string is a key and List orders keys bytewise.
//   - Update runs fn in a SERIALIZABLE transaction
//     (https://www.postgresql.org/docs/current/transaction-iso.html#XACT-SERIALIZABLE)
//     and runs it again when PostgreSQL reports a serialization failure
//     (SQLSTATE 40001) or a deadlock (40P01), so read-modify-write
//     transactions from many nodes, processes or goroutines lose no update.
//   - Append takes a transaction-scoped advisory lock
//     (pg_advisory_xact_lock) before it inserts, so appends commit in the
//     order of their IDs: a reader that sees record n has seen every record
//     below n. Package replica relies on this to page through a log by
//     position without missing a record that committed late.
//
// The connection string is a pgx/libpq one (URL or key=value). Keep the
// password out of it (PGPASSWORD or a .pgpass file work); to put a node's
// tables in their own schema add search_path (e.g. "...&search_path=node1"),
// which pgx sends as a run-time parameter. Errors never repeat a password.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keymesh/keymesh/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// maxAttempts bounds how often Update runs fn when transactions keep
// conflicting.
const maxAttempts = 64

// DB is a store.Store backed by a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	ops
}

var _ store.Store = (*DB)(nil)

// Open connects to the database that dsn names and checks that it answers.
// Call Migrate before using it.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts the password
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a parsed pool configuration.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %w", where(cfg), err)
	}
	db := &DB{pool: pool}
	db.ops = ops{q: pool, db: db}
	return db, nil
}

// where names the server and database for error messages (never the
// password).
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

// Close closes the pool, waiting for acquired connections to be released.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// migrationLock is the advisory lock key that serialises Migrate calls on
// one database (any 64-bit constant; this is "keymesh" in ASCII).
const migrationLock = 0x6b65796d657368

// Migrate applies the embedded migrations that have not been applied yet,
// each in its own transaction with the row recording it in
// schema_migrations. Running it again is a no-op. Concurrent Migrate calls
// (several processes starting at once) wait for each other.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT        NOT NULL,
		applied TIMESTAMPTZ NOT NULL
	)`); err != nil {
		return fmt.Errorf("postgres: creating schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := apply(ctx, conn.Conn(), m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgx.Conn, m store.Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, now())`,
			m.Version, m.Name); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		return nil
	})
}

// Update runs fn in a SERIALIZABLE transaction, committed if fn returns
// nil. When PostgreSQL aborts the transaction for a serialization failure
// or a deadlock (in fn or at commit), fn runs again in a new transaction,
// after a short random pause, up to 64 times.
func (db *DB) Update(ctx context.Context, fn func(tx store.Ops) error) error {
	for attempt := 1; ; attempt++ {
		err := db.updateOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
}

func (db *DB) updateOnce(ctx context.Context, fn func(tx store.Ops) error) (err error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(ops{q: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// retryable reports a serialization failure or deadlock anywhere in err's
// chain.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
