// Package record is the binary format of keymesh's signed state records
// (scopes, accounts, credentials, sessions) and of the approvals that
// authorise operations: a canonical encoding (one byte string per value),
// strict decoding (anything else, trailing bytes included, is an error),
// and the developer and session keys that sign them (P-256 ECDSA or
// Ed25519).
//
// It implements the "Replication" rule of DESIGN.md: every state change is
// a record signed by whoever may make it, so that each node can verify it
// itself. What a record means, and who may sign it, is decided by package
// auth; this package only encodes, decodes and checks signatures. It does
// no I/O.
//
// # Encoding
//
// Integers are big-endian and fixed-size (u8, u32, u64); a byte string or
// a UTF-8 string is a u32 length followed by its bytes; a list is a u32
// count followed by its items; an optional value is a u8 0 or 1 followed by
// the value. There are no maps and no defaults, so each value has exactly
// one encoding and decode(encode(v)) == v and encode(decode(b)) == b for
// every b that decodes.
//
// Two exceptions keep old records valid, both optional trailing fields
// written only when present: a scope config ends with an optional flags
// byte (ScopeConfig.AllowRawDigest, and ScopeConfig.DevQuorum, whose flag
// is followed by the quorum byte), absent when no flag is set and never
// zero when present, so a config without flags encodes, and a scope's id
// hashes, exactly as before the byte existed; and an account registration
// ends with an optional registration key (a 1 byte, then the key). A node
// that predates a field refuses a body holding it as malformed rather than
// misreading it.
package record

import (
	"errors"
	"unicode/utf8"

	"github.com/keymesh/keymesh/internal/codec"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("record: malformed")

// MaxField bounds any single byte string or list inside a record, so that
// a hostile length prefix cannot make a decoder allocate much.
const MaxField = 64 << 10

// Writer builds a canonical encoding. The zero value is ready to use.
type Writer = codec.Writer

// Reader decodes a canonical encoding strictly (codec.Reader, with
// record's bounds). The first error sticks: later reads return zero
// values, and Err (or Done) reports it.
type Reader struct{ r codec.Reader }

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{r: codec.NewReader(b, ErrMalformed)} }

func (r *Reader) fail(format string, args ...any) { r.r.Fail(format, args...) }

// Err returns the first error.
func (r *Reader) Err() error { return r.r.Err() }

// Done returns the first error, or an error if bytes are left over.
func (r *Reader) Done() error { return r.r.Done() }

// more reports whether bytes are left (an optional trailing field).
func (r *Reader) more() bool { return r.r.Len() > 0 }

// U8 reads one byte.
func (r *Reader) U8(what string) uint8 { return r.r.U8(what) }

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 { return r.r.U32(what) }

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 { return r.r.U64(what) }

// Fixed reads exactly n bytes into dst.
func (r *Reader) Fixed(dst []byte, what string) { copy(dst, r.r.Bytes(len(dst), what)) }

// Var reads a length-prefixed byte string of at most max bytes (max <= 0
// means MaxField). The result is a copy.
func (r *Reader) Var(max int, what string) []byte {
	if max <= 0 || max > MaxField {
		max = MaxField
	}
	b := r.r.Var(max, what)
	if r.r.Err() != nil {
		return nil
	}
	return append([]byte{}, b...)
}

// String reads a length-prefixed UTF-8 string of at most max bytes.
func (r *Reader) String(max int, what string) string {
	b := r.Var(max, what)
	if r.Err() != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.fail("%s: not UTF-8", what)
		return ""
	}
	return string(b)
}

// Count reads a list length of at most max items.
func (r *Reader) Count(max int, what string) int {
	n := r.U32(what)
	if r.Err() != nil {
		return 0
	}
	if n > uint32(max) {
		r.fail("%s: %d items, at most %d allowed", what, n, max)
		return 0
	}
	return int(n)
}

// Bool reads a u8 that must be 0 or 1.
func (r *Reader) Bool(what string) bool {
	v := r.U8(what)
	if v > 1 {
		r.fail("%s: %d is not 0 or 1", what, v)
	}
	return v == 1
}
