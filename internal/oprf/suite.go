package oprf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cloudflare/circl/group"
	circloprf "github.com/cloudflare/circl/oprf"
)

// SuiteID is the RFC 9497 identifier of the only suite this package
// implements.
const SuiteID = "ristretto255-SHA512"

const (
	elementLen = 32 // Ne for ristretto255 (RFC 9497 §4.1)
	scalarLen  = 32 // Ns for ristretto255
	proofLen   = 2 * scalarLen
	// OutputLen is the length of an OPRF output, Nh for SHA-512.
	OutputLen = 64
	// MaxInputLen is the longest OPRF input RFC 9497 allows (its length is
	// encoded in two bytes).
	MaxInputLen = math.MaxUint16

	encodingVersion = 1
)

var (
	g     = group.Ristretto255
	suite = circloprf.SuiteRistretto255
)

// scopeLabel separates keymesh's scoped inputs from any other use of the
// same key.
const scopeLabel = "keymesh/uid/scoped-input/v1"

// ScopedInput returns the canonical OPRF input for data within scope:
//
//	I2OSP(len(label),2) ‖ label ‖ I2OSP(len(scope),2) ‖ scope ‖ I2OSP(len(data),2) ‖ data
//
// with label "keymesh/uid/scoped-input/v1". Every field is length-prefixed,
// so distinct (scope, data) pairs never encode alike, and the same data in two
// scopes gives unrelated OPRF outputs. The scope must not be empty (an app
// that wants to share pseudonyms with another uses the same scope), and the
// whole encoding must fit RFC 9497's 65535-byte input limit.
func ScopedInput(scope string, data []byte) ([]byte, error) {
	if scope == "" {
		return nil, errors.New("oprf: empty scope")
	}
	n := 6 + len(scopeLabel) + len(scope) + len(data)
	if n > MaxInputLen {
		return nil, fmt.Errorf("oprf: scoped input of %d bytes exceeds %d", n, MaxInputLen)
	}
	b := make([]byte, 0, n)
	for _, f := range [][]byte{[]byte(scopeLabel), []byte(scope), data} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// decodeElement decodes a canonical ristretto255 encoding that is not the
// identity.
func decodeElement(b []byte) (group.Element, error) {
	if len(b) != elementLen {
		return nil, fmt.Errorf("element of %d bytes, want %d", len(b), elementLen)
	}
	e := g.NewElement()
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, errors.New("invalid ristretto255 element encoding")
	}
	if e.IsIdentity() {
		return nil, errors.New("identity element")
	}
	return e, nil
}

// decodeScalar decodes a canonical (reduced) scalar encoding.
func decodeScalar(b []byte) (group.Scalar, error) {
	if len(b) != scalarLen {
		return nil, fmt.Errorf("scalar of %d bytes, want %d", len(b), scalarLen)
	}
	s := g.NewScalar()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, errors.New("non-canonical scalar encoding")
	}
	return s, nil
}

func mustEncode(e group.Element) []byte {
	b, err := e.MarshalBinaryCompress()
	if err != nil {
		panic("oprf: cannot encode element: " + err.Error())
	}
	return b
}

func mustEncodeScalar(s group.Scalar) []byte {
	b, err := s.MarshalBinary()
	if err != nil {
		panic("oprf: cannot encode scalar: " + err.Error())
	}
	return b
}

// lagrange returns λ_i(x) = Π_{j≠i} (x − x_j)/(x_i − x_j) for the
// evaluation points ids (distinct, non-zero). The points are public; this
// is not on a secret.
func lagrange(ids []uint16, i int, x uint16) group.Scalar {
	num := g.NewScalar().SetUint64(1)
	den := g.NewScalar().SetUint64(1)
	xs := g.NewScalar().SetUint64(uint64(x))
	xi := g.NewScalar().SetUint64(uint64(ids[i]))
	t := g.NewScalar()
	for j, id := range ids {
		if j == i {
			continue
		}
		xj := g.NewScalar().SetUint64(uint64(id))
		num.Mul(num, t.Sub(xs, xj))
		den.Mul(den, t.Sub(xi, xj))
	}
	return num.Mul(num, den.Inv(den))
}
