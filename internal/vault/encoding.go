package vault

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

// Binary records (credentials, grants, delegated grants) share one layout,
// written with codec.Writer and read with codec.Reader: a type byte, a
// version byte, then fields in a fixed order; variable fields are a 4-byte
// big-endian length and the bytes, fixed fields are raw, and integers are
// big-endian. Decoding is strict: every length is bounded, a fixed field
// must be exactly its size, and trailing bytes are an error, so each value
// has one encoding.

// The errors of each binary decoder wrap its record's name.
var (
	errCredentialEncoding = errors.New("vault: credential")
	errGrantEncoding      = errors.New("vault: grant")
	errDelegatedEncoding  = errors.New("vault: delegated grant")
)

// readHeader reads a binary record's type and version bytes; name is the
// record's ("credential").
func readHeader(r *codec.Reader, typ, version byte, name string) {
	t := r.U8("type")
	v := r.U8("version")
	if r.Err() == nil && t != typ {
		r.Fail("not a %s (type byte %d)", name, t)
	}
	if r.Err() == nil && v != version {
		r.Fail("unknown %s version %d", name, v)
	}
}

// Record type bytes.
const (
	typeCredential     = 'C'
	typeGrant          = 'G'
	typeDelegatedGrant = 'D'
)

// newID returns a random version-4 UUID (RFC 9562 §5.4) from crypto/rand.
func newID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("vault: generating id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:]), nil
}

// decodeHex decodes lowercase or uppercase hex of exactly n bytes.
func decodeHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("hex of %d characters, want %d", len(s), 2*n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("not hex")
	}
	return b, nil
}
