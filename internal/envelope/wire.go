package envelope

import (
	"encoding/binary"
	"fmt"
)

// reader decodes fixed and length-prefixed fields; the first error sticks
// and wraps ErrMalformed.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) bytes(n int, name string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("%s truncated", name)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(name string) uint8 {
	if v := r.bytes(1, name); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16(name string) uint16 {
	if v := r.bytes(2, name); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32(name string) uint32 {
	if v := r.bytes(4, name); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64(name string) uint64 {
	if v := r.bytes(8, name); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
