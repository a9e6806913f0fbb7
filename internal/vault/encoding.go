package vault

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Binary records (credentials, grants, delegated grants) share one layout:
// a type byte, a version byte, then fields in a fixed order; variable fields
// are a 4-byte big-endian length and the bytes, fixed fields are raw, and
// integers are big-endian. Decoding is strict: every length is bounded, a
// fixed field must be exactly its size, and trailing bytes are an error, so
// each value has one encoding.

type encoder struct{ b []byte }

func (e *encoder) fixed(b []byte) { e.b = append(e.b, b...) }
func (e *encoder) u8(v uint8)     { e.b = append(e.b, v) }
func (e *encoder) u64(v uint64)   { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) bytes(b []byte) {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(b)))
	e.b = append(e.b, b...)
}
func (e *encoder) str(s string) { e.bytes([]byte(s)) }

type decoder struct {
	b   []byte
	err error
	pkg string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: "+format, append([]any{d.pkg}, args...)...)
	}
}

func (d *decoder) fixed(n int, name string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("%s: truncated", name)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(name string) uint8 {
	v := d.fixed(1, name)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) u64(name string) uint64 {
	v := d.fixed(8, name)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (d *decoder) bytes(max int, name string) []byte {
	l := d.fixed(4, name+" length")
	if l == nil {
		return nil
	}
	n := binary.BigEndian.Uint32(l)
	if uint64(n) > uint64(max) {
		d.fail("%s: %d bytes exceeds %d", name, n, max)
		return nil
	}
	return d.fixed(int(n), name)
}

func (d *decoder) str(max int, name string) string { return string(d.bytes(max, name)) }

func (d *decoder) header(typ, version byte, name string) {
	t := d.u8(name + " type")
	v := d.u8(name + " version")
	if d.err == nil && t != typ {
		d.fail("not a %s (type byte %d)", name, t)
	}
	if d.err == nil && v != version {
		d.fail("unknown %s version %d", name, v)
	}
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
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
