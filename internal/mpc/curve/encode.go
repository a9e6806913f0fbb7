package curve

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// PointLen and ScalarLen are the lengths of the encodings.
const (
	PointLen  = 33
	ScalarLen = 32
)

// Errors wrapped by the decoders.
var (
	ErrInvalidPoint  = errors.New("curve: invalid point encoding")
	ErrInvalidScalar = errors.New("curve: invalid scalar encoding")
)

// IsIdentity reports whether p is the identity (Z = 0, or X = Y = 0).
func IsIdentity(p *secp256k1.JacobianPoint) bool {
	var q secp256k1.JacobianPoint
	q.Set(p)
	q.Z.Normalize()
	if q.Z.IsZero() {
		return true
	}
	q.X.Normalize()
	q.Y.Normalize()
	return q.X.IsZero() && q.Y.IsZero()
}

// EncodePoint returns the 33-byte compressed SEC1 encoding of p. It panics
// if p is the identity, which has no such encoding: callers check points
// they did not compute themselves (DecodePoint already does).
func EncodePoint(p *secp256k1.JacobianPoint) []byte {
	if IsIdentity(p) {
		panic("curve: EncodePoint of the identity")
	}
	var q secp256k1.JacobianPoint
	q.Set(p)
	q.Z.Normalize()
	if q.Z.IsOne() { // already affine, as every result of this package
		q.X.Normalize()
	} else {
		q.ToAffine()
	}
	out := make([]byte, PointLen)
	q.Y.Normalize()
	out[0] = 0x02 | byte(q.Y.IsOddBit()) // no branch: p may be a secret DH value
	q.X.PutBytesUnchecked(out[1:])
	return out
}

// DecodePoint parses a 33-byte compressed SEC1 point. It rejects any other
// length, a prefix other than 0x02 or 0x03, x >= p and an x with no point on
// the curve. The identity has no compressed encoding, so it is never
// returned. The result is affine (Z = 1).
func DecodePoint(b []byte) (*secp256k1.JacobianPoint, error) {
	if len(b) != PointLen {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrInvalidPoint, len(b), PointLen)
	}
	if b[0] != 0x02 && b[0] != 0x03 {
		return nil, fmt.Errorf("%w: prefix", ErrInvalidPoint)
	}
	var x, y secp256k1.FieldVal
	if overflow := x.SetByteSlice(b[1:]); overflow {
		return nil, fmt.Errorf("%w: x not below the field prime", ErrInvalidPoint)
	}
	if !secp256k1.DecompressY(&x, b[0] == 0x03, &y) {
		return nil, fmt.Errorf("%w: not on the curve", ErrInvalidPoint)
	}
	y.Normalize()
	var one secp256k1.FieldVal
	one.SetInt(1)
	p := secp256k1.MakeJacobianPoint(&x, &y, &one)
	return &p, nil
}

// EncodeScalar returns the 32-byte big-endian encoding of s.
func EncodeScalar(s *secp256k1.ModNScalar) []byte {
	out := make([]byte, ScalarLen)
	s.PutBytesUnchecked(out)
	return out
}

// DecodeScalar parses a 32-byte big-endian scalar, rejecting any other
// length and values >= n. Zero is accepted.
func DecodeScalar(b []byte) (*secp256k1.ModNScalar, error) {
	if len(b) != ScalarLen {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrInvalidScalar, len(b), ScalarLen)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow {
		s.Zero()
		return nil, fmt.Errorf("%w: not below the group order", ErrInvalidScalar)
	}
	return &s, nil
}

// DecodeNonZeroScalar is DecodeScalar that also rejects zero.
func DecodeNonZeroScalar(b []byte) (*secp256k1.ModNScalar, error) {
	s, err := DecodeScalar(b)
	if err != nil {
		return nil, err
	}
	if s.IsZero() {
		return nil, fmt.Errorf("%w: zero", ErrInvalidScalar)
	}
	return s, nil
}

// RandomScalar returns a uniform non-zero scalar read from rand by rejection
// sampling (32 bytes at a time; a draw >= n or equal to zero is discarded).
func RandomScalar(rand io.Reader) (*secp256k1.ModNScalar, error) {
	var b [32]byte
	defer clear(b[:])
	for range 128 {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("curve: reading randomness: %w", err)
		}
		var s secp256k1.ModNScalar
		if overflow := s.SetBytes(&b); overflow == 0 && !s.IsZero() {
			return &s, nil
		}
	}
	return nil, errors.New("curve: randomness source is broken (128 rejected draws)")
}
