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
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("record: malformed")

// MaxField bounds any single byte string or list inside a record, so that
// a hostile length prefix cannot make a decoder allocate much.
const MaxField = 64 << 10

// Writer builds a canonical encoding. The zero value is ready to use.
type Writer struct{ b []byte }

// Bytes returns the encoding so far.
func (w *Writer) Bytes() []byte { return w.b }

// U8 appends v.
func (w *Writer) U8(v uint8) { w.b = append(w.b, v) }

// U32 appends v, big-endian.
func (w *Writer) U32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }

// U64 appends v, big-endian.
func (w *Writer) U64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

// Fixed appends b with no length prefix (for fixed-size fields).
func (w *Writer) Fixed(b []byte) { w.b = append(w.b, b...) }

// Var appends b with a u32 length prefix.
func (w *Writer) Var(b []byte) {
	w.U32(uint32(len(b)))
	w.b = append(w.b, b...)
}

// String appends s with a u32 length prefix.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.b = append(w.b, s...)
}

// Reader decodes a canonical encoding strictly. The first error sticks:
// later reads return zero values, and Err (or Done) reports it.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// Done returns the first error, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8(what string) uint8 {
	b := r.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 {
	b := r.take(8, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Fixed reads exactly n bytes into dst.
func (r *Reader) Fixed(dst []byte, what string) {
	b := r.take(len(dst), what)
	if b != nil {
		copy(dst, b)
	}
}

// Var reads a length-prefixed byte string of at most max bytes (max <= 0
// means MaxField). The result is a copy.
func (r *Reader) Var(max int, what string) []byte {
	if max <= 0 || max > MaxField {
		max = MaxField
	}
	n := r.U32(what)
	if r.err != nil {
		return nil
	}
	if n > uint32(max) {
		r.fail("%s: %d bytes, at most %d allowed", what, n, max)
		return nil
	}
	b := r.take(int(n), what)
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// String reads a length-prefixed UTF-8 string of at most max bytes.
func (r *Reader) String(max int, what string) string {
	b := r.Var(max, what)
	if r.err != nil {
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
	if r.err != nil {
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
