// Package store defines the node's persistent storage: a key/value map split
// into namespaces and an append-only log of records, both reached through
// one interface so that the embedded SQLite backend (package
// store/sqlite) and a PostgreSQL backend can be swapped without touching
// callers.
//
// The interface is deliberately small and portable: every call takes a
// context, keys and namespaces are strings, values and record bodies are
// opaque bytes, and a transaction is a function run by Update (committed if
// it returns nil, rolled back otherwise). Nothing in it depends on a SQL
// dialect. Later services (accounts, scopes, share records) build their
// own typed tables on the same migration mechanism (see Migration).
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (possibly wrapped) by Get when a key is absent.
var ErrNotFound = errors.New("store: not found")

// Limits that every backend enforces, so that behaviour does not depend on
// which one a node runs.
const (
	MaxNamespaceLen = 128
	MaxKeyLen       = 1024
	MaxValueLen     = 16 << 20
)

// Entry is one key/value pair of a namespace.
type Entry struct {
	Key   string
	Value []byte
}

// Record is one entry of an append-only stream. ID is assigned by the store
// on Append, is unique across all streams and increases with each append.
type Record struct {
	ID      int64
	Stream  string
	Data    []byte
	Created time.Time
}

// Ops are the operations available both directly on a Store (each call is
// its own transaction) and inside Update.
type Ops interface {
	// Get returns the value under key in namespace ns, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, ns, key string) ([]byte, error)
	// Put sets key in ns to value, replacing any previous value.
	Put(ctx context.Context, ns, key string, value []byte) error
	// Delete removes key from ns; deleting an absent key is not an error.
	Delete(ctx context.Context, ns, key string) error
	// List returns the entries of ns whose key starts with prefix, in
	// ascending byte order of the key, at most limit of them (limit <= 0
	// means no limit).
	List(ctx context.Context, ns, prefix string, limit int) ([]Entry, error)

	// Append adds data to the end of stream and returns the new record's ID.
	// Records are never changed or removed.
	Append(ctx context.Context, stream string, data []byte) (int64, error)
	// Records returns the records of stream with ID greater than after, in
	// ID order, at most limit of them (limit <= 0 means no limit).
	Records(ctx context.Context, stream string, after int64, limit int) ([]Record, error)
}

// Store is a node's database.
//
// Migrate must be called once after opening and before any other method.
// A Store is safe for concurrent use.
type Store interface {
	Ops
	// Migrate brings the schema up to date. It is idempotent: migrations
	// already applied are skipped.
	Migrate(ctx context.Context) error
	// Update runs fn in one transaction: if fn returns nil the writes are
	// committed, otherwise they are rolled back and fn's error is returned.
	// tx must not be used after fn returns. fn may be run again if the
	// backend reports a serialization conflict, so it should have no side
	// effects outside tx.
	Update(ctx context.Context, fn func(tx Ops) error) error
	// Close releases the database. It does not wait for running calls.
	Close() error
}

// CheckKey reports whether ns and key are within the limits every backend
// enforces; backends call it so that they all reject the same inputs.
func CheckKey(ns, key string) error {
	if ns == "" || len(ns) > MaxNamespaceLen {
		return errors.New("store: namespace must be 1 to 128 bytes")
	}
	if len(key) > MaxKeyLen {
		return errors.New("store: key longer than 1024 bytes")
	}
	return nil
}

// CheckValue reports whether v is within MaxValueLen.
func CheckValue(v []byte) error {
	if len(v) > MaxValueLen {
		return errors.New("store: value larger than 16 MiB")
	}
	return nil
}
