package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keymesh/keymesh/internal/store"
)

// Store namespaces (package doc, "Store layout").
const (
	nsChain     = "audit/chain"
	nsMeta      = "audit/meta"
	nsPeerHeads = "audit/peer-heads"

	metaHead   = "head"
	metaSigned = "signed"
)

// pageBits: the chain is read in pages of 1<<pageBits entries, each the
// keys sharing a prefix of 16-pageBits/4 hex digits.
const pageBits = 12

func chainKey(seq uint64) string { return fmt.Sprintf("%016x", seq) }

func parseChainKey(k string) (uint64, bool) {
	if len(k) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(k, 16, 64)
	return v, err == nil && chainKey(v) == k
}

// Log is a node's audit chain in its store. It is safe for concurrent use.
type Log struct {
	st  store.Store
	now func() time.Time
}

// NewLog returns the audit log kept in st (migrated).
func NewLog(st store.Store) *Log { return &Log{st: st, now: time.Now} }

// Append adds e to the end of the chain in its own store transaction and
// returns the entry as stored (with Seq, Prev and Time set).
func (l *Log) Append(ctx context.Context, e Entry) (*Entry, error) {
	var out *Entry
	err := l.st.Update(ctx, func(tx store.Ops) error {
		var err error
		out, err = l.AppendTx(ctx, tx, e)
		return err
	})
	return out, err
}

// AppendTx adds e to the end of the chain inside the caller's transaction
// tx (of a store.Store's Update), so that the entry commits or rolls back
// with the state change it records. A zero e.Time is set to now.
func (l *Log) AppendTx(ctx context.Context, tx store.Ops, e Entry) (*Entry, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.normalize()
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	seq, prev, err := readHead(ctx, tx)
	if err != nil {
		return nil, err
	}
	e.Seq, e.Prev = seq+1, prev
	enc := e.Marshal()
	h := hashEncoding(enc)
	if err := tx.Put(ctx, nsChain, chainKey(e.Seq), enc); err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	if err := tx.Put(ctx, nsMeta, metaHead, encodeEnd(e.Seq, h)); err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	return &e, nil
}

func encodeEnd(seq uint64, h [32]byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, seq), h[:]...)
}

// readHead returns the chain's last seq and hash (0 and zeros when empty).
func readHead(ctx context.Context, ops store.Ops) (uint64, [32]byte, error) {
	var h [32]byte
	b, err := ops.Get(ctx, nsMeta, metaHead)
	if errors.Is(err, store.ErrNotFound) {
		return 0, h, nil
	}
	if err != nil {
		return 0, h, fmt.Errorf("audit: %w", err)
	}
	if len(b) != 8+32 {
		return 0, h, fmt.Errorf("%w: chain end of %d bytes", ErrMalformed, len(b))
	}
	copy(h[:], b[8:])
	return binary.BigEndian.Uint64(b), h, nil
}

// Head returns the chain's last seq and hash, as Append recorded them.
func (l *Log) Head(ctx context.Context) (uint64, [32]byte, error) {
	return readHead(ctx, l.st)
}

// Walk calls fn with the raw stored chain, page by page in key order:
// every key of the chain namespace and its value, with the seq the key
// names (0 if it names none). It reads every page that may hold a seq up
// to last, and past it until an empty page, and stops early when fn
// returns an error, which Walk returns.
func Walk(ctx context.Context, ops store.Ops, last uint64, fn func(seq uint64, key string, val []byte) error) error {
	for page := uint64(0); page < 1<<(64-pageBits); page++ {
		start := page << pageBits
		es, err := ops.List(ctx, nsChain, chainKey(start)[:16-pageBits/4], 0)
		if err != nil {
			return fmt.Errorf("audit: read chain: %w", err)
		}
		for _, e := range es {
			seq, _ := parseChainKey(e.Key)
			if err := fn(seq, e.Key, e.Value); err != nil {
				return err
			}
		}
		if len(es) == 0 && start > last {
			return nil
		}
	}
	return nil
}

// Since calls fn with every entry whose Time is at or after t, in chain
// order. It does not check the chain (Verify does); an entry that does not
// decode ends it with an error naming its seq.
func (l *Log) Since(ctx context.Context, t time.Time, fn func(e *Entry, hash [32]byte) error) error {
	last, _, err := l.Head(ctx)
	if err != nil {
		return err
	}
	return Walk(ctx, l.st, last, func(seq uint64, key string, val []byte) error {
		e, err := DecodeEntry(val)
		if err != nil {
			return fmt.Errorf("audit: entry %s: %w", key, err)
		}
		if e.Time.Before(t) {
			return nil
		}
		return fn(e, hashEncoding(val))
	})
}

// Store layout, exported for tools and tests that read or (playing the
// operator) edit the raw chain.
const (
	NSChain = nsChain
	NSMeta  = nsMeta
)

// ChainKey is the key of entry seq in NSChain.
func ChainKey(seq uint64) string { return chainKey(seq) }
