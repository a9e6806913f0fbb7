package dkls23

import (
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

// ErrMalformed is wrapped by the errors of SplitFields.
var ErrMalformed = errors.New("dkls23: malformed message")

// maxField bounds one field of a protocol message.
const maxField = 1 << 22

// AppendField appends f with a 4-byte big-endian length prefix. Protocol
// payloads in keygen and sign are sequences of such fields, so every
// payload has exactly one encoding.
func AppendField(b, f []byte) []byte { return codec.AppendVar(b, f) }

// SplitFields parses exactly n length-prefixed fields, strictly (with
// codec.Reader): a truncated field, an oversized length and trailing bytes
// are errors. The fields alias b.
func SplitFields(b []byte, n int) ([][]byte, error) {
	r := codec.NewReader(b, ErrMalformed)
	out := make([][]byte, 0, n)
	for i := range n {
		f := r.Var(maxField, "field")
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%w (field %d of %d)", err, i+1, n)
		}
		out = append(out, f)
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return out, nil
}
