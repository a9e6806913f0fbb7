package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/store"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops implements store.Ops with reads on r and writes on w (the same
// transaction inside Update).
type ops struct{ r, w querier }

func (o ops) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckKey(ns, key); err != nil {
		return nil, err
	}
	var v []byte
	err := o.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE ns = ? AND key = ?`, ns, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get %q in %q: %w", key, ns, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %q in %q: %w", key, ns, err)
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
	_, err := o.w.ExecContext(ctx, `INSERT INTO kv (ns, key, value) VALUES (?, ?, ?)
		ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value`, ns, key, value)
	if err != nil {
		return fmt.Errorf("sqlite: put %q in %q: %w", key, ns, err)
	}
	return nil
}

func (o ops) Delete(ctx context.Context, ns, key string) error {
	if err := store.CheckKey(ns, key); err != nil {
		return err
	}
	if _, err := o.w.ExecContext(ctx, `DELETE FROM kv WHERE ns = ? AND key = ?`, ns, key); err != nil {
		return fmt.Errorf("sqlite: delete %q in %q: %w", key, ns, err)
	}
	return nil
}

func (o ops) List(ctx context.Context, ns, prefix string, limit int) ([]store.Entry, error) {
	if err := store.CheckKey(ns, prefix); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var rows *sql.Rows
	var err error
	if end, ok := prefixEnd(prefix); ok {
		rows, err = o.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE ns = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?`, ns, prefix, end, limit)
	} else {
		rows, err = o.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE ns = ? AND key >= ? ORDER BY key LIMIT ?`, ns, prefix, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %q in %q: %w", prefix, ns, err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var e store.Entry
		if err := rows.Scan(&e.Key, &e.Value); err != nil {
			return nil, fmt.Errorf("sqlite: list %q in %q: %w", prefix, ns, err)
		}
		if e.Value == nil {
			e.Value = []byte{}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %q in %q: %w", prefix, ns, err)
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

func (o ops) Append(ctx context.Context, stream string, data []byte) (int64, error) {
	if err := store.CheckKey(stream, ""); err != nil {
		return 0, err
	}
	if err := store.CheckValue(data); err != nil {
		return 0, err
	}
	if data == nil {
		data = []byte{}
	}
	res, err := o.w.ExecContext(ctx, `INSERT INTO records (stream, data, created) VALUES (?, ?, ?)`,
		stream, data, time.Now().UTC().UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	return id, nil
}

func (o ops) Records(ctx context.Context, stream string, after int64, limit int) ([]store.Record, error) {
	if err := store.CheckKey(stream, ""); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := o.r.QueryContext(ctx, `SELECT id, data, created FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?`, stream, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: records of %q: %w", stream, err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r := store.Record{Stream: stream}
		var created int64
		if err := rows.Scan(&r.ID, &r.Data, &created); err != nil {
			return nil, fmt.Errorf("sqlite: records of %q: %w", stream, err)
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		r.Created = time.UnixMicro(created).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: records of %q: %w", stream, err)
	}
	return out, nil
}
