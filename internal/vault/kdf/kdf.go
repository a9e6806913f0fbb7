// Package kdf derives vault encryption keys from a password and the user's
// id, byte-compatible with the idOS SDK's idOSKeyDerivation
// (idos-sdk-js packages/utils/src/encryption/idOSKeyDerivation.ts).
//
// Version V0_1 ("KDF v0.1", the idOS default) is scrypt (RFC 7914 §6) with
// N=16384, r=8, p=1, dkLen=32 over the UTF-8 bytes of the NFKC-normalised
// password (Unicode UAX #15), salted with the UTF-8 bytes of the user id
// exactly as given; the 32 bytes are the X25519 secret key, used as-is as
// nacl.box.keyPair.fromSecretKey does. V0 is the same with N=128, kept so
// that old idOS data still opens. Argon2id (RFC 9106) is V1Argon2id, the
// keymesh-only next version; idOS has no such version, so keys derived with
// it do not open in idOS.
//
// The version is recorded beside the data it protects, so the parameters
// can be raised without breaking what was sealed before.
package kdf

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/keymesh/keymesh/internal/vault"
)

// Version names a set of KDF parameters. Its String is the name idOS uses
// ("0", "0.1") or a keymesh name for versions idOS does not have.
type Version uint8

const (
	// V0 is idOS KDF version 0: scrypt N=128, r=8, p=1. Too weak for new
	// keys; kept to read old data.
	V0 Version = 1
	// V0_1 is idOS KDF version 0.1: scrypt N=16384, r=8, p=1. The default.
	V0_1 Version = 2
	// V1Argon2id is keymesh's next version: Argon2id with t=3, m=64 MiB,
	// p=4 (RFC 9106 §4, second recommended option). Not known to idOS.
	V1Argon2id Version = 3

	// Latest is the version new keys use: the latest idOS can also derive.
	Latest = V0_1
)

// KeySize is the derived key length (dkLen).
const KeySize = 32

// MaxPasswordLen bounds the password, in bytes after normalisation.
const MaxPasswordLen = 1024

// Params are the parameters of one version.
type Params struct {
	Algorithm string // "scrypt" or "argon2id"
	N, R, P   int    // scrypt cost, block size, parallelism
	Time      uint32 // argon2id passes
	MemoryKiB uint32 // argon2id memory
	Threads   uint8  // argon2id lanes
}

var params = map[Version]Params{
	V0:         {Algorithm: "scrypt", N: 128, R: 8, P: 1},
	V0_1:       {Algorithm: "scrypt", N: 16384, R: 8, P: 1},
	V1Argon2id: {Algorithm: "argon2id", Time: 3, MemoryKiB: 64 * 1024, Threads: 4},
}

// ErrUnknownVersion is returned for a version this package does not know.
var ErrUnknownVersion = errors.New("kdf: unknown version")

// Params returns the version's parameters.
func (v Version) Params() (Params, error) {
	p, ok := params[v]
	if !ok {
		return Params{}, fmt.Errorf("%w %d", ErrUnknownVersion, uint8(v))
	}
	return p, nil
}

// String returns the version's name: "0", "0.1" (as idOS numbers them) or
// "km-argon2id-1".
func (v Version) String() string {
	switch v {
	case V0:
		return "0"
	case V0_1:
		return "0.1"
	case V1Argon2id:
		return "km-argon2id-1"
	}
	return fmt.Sprintf("unknown(%d)", uint8(v))
}

// ParseVersion parses a name that String returns.
func ParseVersion(s string) (Version, error) {
	for v := range params {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownVersion, s)
}

// Derive returns the X25519 private key derived from password and the
// user id under version v. userID must pass vault.ValidUserID (the error
// wraps vault.ErrInvalidUserID otherwise) and is used as given: idOS salts
// with the exact string, so "ABC…" and "abc…" give different keys. The
// password must be valid UTF-8; it is NFKC-normalised first. Errors never
// contain the password.
func Derive(v Version, password, userID string) (*vault.PrivateKey, error) {
	p, err := v.Params()
	if err != nil {
		return nil, err
	}
	if err := vault.ValidUserID(userID); err != nil {
		return nil, fmt.Errorf("kdf: salt: %w", err)
	}
	if !utf8.ValidString(password) {
		return nil, errors.New("kdf: password is not valid UTF-8")
	}
	pw := norm.NFKC.Bytes([]byte(password))
	defer clear(pw)
	if len(pw) == 0 {
		return nil, errors.New("kdf: empty password")
	}
	if len(pw) > MaxPasswordLen {
		return nil, fmt.Errorf("kdf: password longer than %d bytes", MaxPasswordLen)
	}
	var dk []byte
	switch p.Algorithm {
	case "scrypt":
		if dk, err = scryptKey(pw, []byte(userID), p.N, p.R, p.P, KeySize); err != nil {
			return nil, err
		}
	case "argon2id":
		dk = argon2.IDKey(pw, []byte(userID), p.Time, p.MemoryKiB, p.Threads, KeySize)
	}
	defer clear(dk)
	return vault.NewPrivateKey(dk)
}

// scryptKey is RFC 7914 §6 scrypt; the known-answer tests call it with the
// RFC's own parameters.
func scryptKey(pw, salt []byte, n, r, p, dkLen int) ([]byte, error) {
	dk, err := scrypt.Key(pw, salt, n, r, p, dkLen)
	if err != nil {
		return nil, fmt.Errorf("kdf: scrypt: %w", err)
	}
	return dk, nil
}
