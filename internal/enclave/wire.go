package enclave

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the length-prefixed fields of the formats in this package.
// The first error sticks; done reports it, or trailing bytes.
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

func (r *reader) u8(name string) byte {
	v := r.bytes(1, name)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u32(name string) uint32 {
	v := r.bytes(4, name)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// lp reads a field prefixed with a 4-byte big-endian length of at most max.
func (r *reader) lp(max int, name string) []byte {
	n := r.u32(name + " length")
	if r.err == nil && n > uint32(max) {
		r.fail("%s is %d bytes, limit %d", name, n, max)
		return nil
	}
	return r.bytes(int(n), name)
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func appendLP(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}
