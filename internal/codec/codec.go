// Package codec reads and writes keymesh's binary formats: big-endian
// integers, fixed-size fields, and byte strings behind a 1-, 2- or 4-byte
// big-endian length. Signed records (package record), vault credentials
// and grants, enclave quotes, sealed blobs and migration bundles, sealed
// request headers (package envelope), protocol messages (package round)
// and DKLs23 shares and payloads are all written this way, and all read
// with one Reader.
//
// Reading is strict and built on golang.org/x/crypto/cryptobyte: a
// truncated field, a length over the caller's bound and trailing bytes are
// errors, so each value has exactly one encoding. The first error sticks
// (later reads return zero values), so a decoder reads its fields in order
// and checks once, with Done. Every error wraps the base error the
// decoder names (its package's ErrMalformed) and says which field failed;
// no error quotes the input, which may be secret.
//
// Writing is plain appends: cryptobyte.Builder's length-prefix
// continuations buy nothing when every length is known before it is
// written, and Writer cannot fail.
package codec

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Reader reads a binary encoding strictly. Make one with NewReader.
type Reader struct {
	s    cryptobyte.String
	base error
	err  error
}

// NewReader returns a Reader over b whose errors wrap base. Slices it
// returns alias b.
func NewReader(b []byte, base error) Reader {
	return Reader{s: cryptobyte.String(b), base: base}
}

// Fail records an error unless one is recorded already. The error wraps
// the base error; format and args must not carry secret input.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", r.base, fmt.Sprintf(format, args...))
	}
}

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// Done returns the first error, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && !r.s.Empty() {
		r.Fail("%d trailing bytes", len(r.s))
	}
	return r.err
}

// Len returns the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.s) }

// truncated and tooLong are kept out of line so that the reads calling them
// stay small enough to inline: a decode is a run of inlined cryptobyte reads.
//
//go:noinline
func (r *Reader) truncated(what string) { r.Fail("%s: truncated", what) }

//go:noinline
func (r *Reader) tooLong(what string, n uint32, max int) {
	r.Fail("%s: %d bytes, at most %d allowed", what, n, max)
}

// Bytes reads exactly n bytes; the result aliases the input. It returns
// nil after an error.
func (r *Reader) Bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	var v []byte
	if n < 0 || !r.s.ReadBytes(&v, n) {
		r.truncated(what)
		return nil
	}
	return v[:n:n]
}

// Magic reads len(magic) bytes that must be magic; what names the format
// ("a quote") in the error.
func (r *Reader) Magic(magic, what string) {
	var m []byte
	switch {
	case r.err != nil:
	case !r.s.ReadBytes(&m, len(magic)):
		r.Fail("%s magic: truncated", what)
	case string(m) != magic:
		r.Fail("not %s (bad magic)", what)
	}
}

// U8, U16, U32 and U64 are written out one by one rather than as one
// generic function over cryptobyte's readers: passing the reader method as
// a value moves the Reader to the heap (5 allocations more per
// SplitFields).

// U8 reads one byte.
func (r *Reader) U8(what string) uint8 {
	var v uint8
	if r.err == nil && !r.s.ReadUint8(&v) {
		r.truncated(what)
	}
	return v
}

// U16 reads a big-endian uint16.
func (r *Reader) U16(what string) uint16 {
	var v uint16
	if r.err == nil && !r.s.ReadUint16(&v) {
		r.truncated(what)
	}
	return v
}

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 {
	var v uint32
	if r.err == nil && !r.s.ReadUint32(&v) {
		r.truncated(what)
	}
	return v
}

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 {
	var v uint64
	if r.err == nil && !r.s.ReadUint64(&v) {
		r.truncated(what)
	}
	return v
}

// Var8 reads a byte string behind a 1-byte length; the result aliases the
// input.
func (r *Reader) Var8(what string) []byte { return r.Bytes(int(r.U8(what)), what) }

// Var16 reads a byte string behind a 2-byte big-endian length; the result
// aliases the input.
func (r *Reader) Var16(what string) []byte { return r.Bytes(int(r.U16(what)), what) }

// Var reads a byte string behind a 4-byte big-endian length of at most max
// bytes; the result aliases the input. A longer length is an error before
// anything is read or allocated.
func (r *Reader) Var(max int, what string) []byte {
	var n uint32
	var v []byte
	switch {
	case r.err != nil:
	case !r.s.ReadUint32(&n):
		r.truncated(what)
	case uint64(n) > uint64(max):
		r.tooLong(what, n, max)
	case !r.s.ReadBytes(&v, int(n)):
		r.truncated(what)
	default:
		return v[:n:n]
	}
	return nil
}

// Writer appends an encoding that Reader reads. The zero value is ready to
// use.
type Writer struct{ b []byte }

// Grow makes room for n more bytes.
func (w *Writer) Grow(n int) {
	if cap(w.b)-len(w.b) < n {
		w.b = append(make([]byte, 0, len(w.b)+n), w.b...)
	}
}

// Bytes returns the encoding so far.
func (w *Writer) Bytes() []byte { return w.b }

// U8 appends v.
func (w *Writer) U8(v uint8) { w.b = append(w.b, v) }

// U16 appends v, big-endian.
func (w *Writer) U16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }

// U32 appends v, big-endian.
func (w *Writer) U32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }

// U64 appends v, big-endian.
func (w *Writer) U64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

// Fixed appends b with no length (a fixed-size field).
func (w *Writer) Fixed(b []byte) { w.b = append(w.b, b...) }

// Var appends b behind a 4-byte big-endian length.
func (w *Writer) Var(b []byte) { w.b = AppendVar(w.b, b) }

// String appends s behind a 4-byte big-endian length.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.b = append(w.b, s...)
}

// AppendVar appends v to b behind a 4-byte big-endian length.
func AppendVar(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}
