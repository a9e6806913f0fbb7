package dkls23

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by the errors of SplitFields.
var ErrMalformed = errors.New("dkls23: malformed message")

// maxField bounds one field of a protocol message.
const maxField = 1 << 22

// AppendField appends f with a 4-byte big-endian length prefix. Protocol
// payloads in keygen and sign are sequences of such fields, so every
// payload has exactly one encoding.
func AppendField(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

// SplitFields parses exactly n length-prefixed fields, strictly: a
// truncated field, an oversized length and trailing bytes are errors. The
// fields alias b.
func SplitFields(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := range n {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: field %d truncated", ErrMalformed, i)
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if l > maxField || uint64(l) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: field %d of %d bytes, %d remain", ErrMalformed, i, l, len(b))
		}
		out = append(out, b[:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return out, nil
}
