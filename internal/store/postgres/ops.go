package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keymesh/keymesh/internal/store"
)

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ops implements store.Ops on q: the pool (each call its own transaction;
// db is set so that Append can open one) or a transaction of Update.
type ops struct {
	q  querier
	db *DB
}

func (o ops) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckKey(ns, key); err != nil {
		return nil, err
	}
	var v []byte
	err := o.q.QueryRow(ctx, `SELECT value FROM kv WHERE ns = $1 AND key = $2`, []byte(ns), []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get %q in %q: %w", key, ns, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %q in %q: %w", key, ns, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (o ops) Put(ctx context.Context, ns, key string, value []byte) error {
	if err := store.CheckKey(ns, key); err != nil {
		return err
	}
	if err := store.CheckValue(value); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value is still a value
	}
	_, err := o.q.Exec(ctx, `INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value`, []byte(ns), []byte(key), value)
	if err != nil {
		return fmt.Errorf("postgres: put %q in %q: %w", key, ns, err)
	}
	return nil
}

func (o ops) Delete(ctx context.Context, ns, key string) error {
	if err := store.CheckKey(ns, key); err != nil {
		return err
	}
	if _, err := o.q.Exec(ctx, `DELETE FROM kv WHERE ns = $1 AND key = $2`, []byte(ns), []byte(key)); err != nil {
		return fmt.Errorf("postgres: delete %q in %q: %w", key, ns, err)
	}
	return nil
}

// limitArg is a LIMIT parameter: NULL (no limit) for limit <= 0.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

func (o ops) List(ctx context.Context, ns, prefix string, limit int) ([]store.Entry, error) {
	if err := store.CheckKey(ns, prefix); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if end, ok := prefixEnd(prefix); ok {
		rows, err = o.q.Query(ctx, `SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4::bigint`,
			[]byte(ns), []byte(prefix), []byte(end), limitArg(limit))
	} else {
		rows, err = o.q.Query(ctx, `SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 ORDER BY key LIMIT $3::bigint`,
			[]byte(ns), []byte(prefix), limitArg(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: list %q in %q: %w", prefix, ns, err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("postgres: list %q in %q: %w", prefix, ns, err)
		}
		if v == nil {
			v = []byte{}
		}
		out = append(out, store.Entry{Key: string(k), Value: v})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %q in %q: %w", prefix, ns, err)
	}
	return out, nil
}

// prefixEnd returns the smallest string greater than every string with the
// given prefix, or false if there is none (the prefix is empty or all 0xff).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Append inserts the record under a transaction-scoped advisory lock
// (keyed by the schema, so separate schemas do not wait for each other),
// so that appends commit in ID order. Outside Update it runs in a
// transaction of its own.
func (o ops) Append(ctx context.Context, stream string, data []byte) (int64, error) {
	if err := store.CheckKey(stream, ""); err != nil {
		return 0, err
	}
	if err := store.CheckValue(data); err != nil {
		return 0, err
	}
	if o.db != nil {
		var id int64
		err := o.db.Update(ctx, func(tx store.Ops) error {
			var err error
			id, err = tx.Append(ctx, stream, data)
			return err
		})
		return id, err
	}
	if data == nil {
		data = []byte{}
	}
	if _, err := o.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('keymesh.records.' || coalesce(current_schema(), '')))`); err != nil {
		return 0, fmt.Errorf("postgres: append to %q: %w", stream, err)
	}
	var id int64
	err := o.q.QueryRow(ctx, `INSERT INTO records (stream, data, created) VALUES ($1, $2, $3) RETURNING id`,
		[]byte(stream), data, time.Now().UTC()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("postgres: append to %q: %w", stream, err)
	}
	return id, nil
}

func (o ops) Records(ctx context.Context, stream string, after int64, limit int) ([]store.Record, error) {
	if err := store.CheckKey(stream, ""); err != nil {
		return nil, err
	}
	rows, err := o.q.Query(ctx, `SELECT id, data, created FROM records WHERE stream = $1 AND id > $2 ORDER BY id LIMIT $3::bigint`,
		[]byte(stream), after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: records of %q: %w", stream, err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r := store.Record{Stream: stream}
		if err := rows.Scan(&r.ID, &r.Data, &r.Created); err != nil {
			return nil, fmt.Errorf("postgres: records of %q: %w", stream, err)
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		r.Created = r.Created.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: records of %q: %w", stream, err)
	}
	return out, nil
}
