package vault

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
)

// KeySize is the size of an X25519 public or private key.
const KeySize = 32

// PublicKey is an X25519 public key (RFC 7748 §5, the u-coordinate), the
// recipient_encryption_public_key or encryptor_public_key of idOS.
type PublicKey [KeySize]byte

// String returns the key in standard base64 with padding, the form idOS
// stores (@stablelib/base64).
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// ParsePublicKey returns the public key held in b, which must be exactly
// KeySize bytes.
func ParsePublicKey(b []byte) (PublicKey, error) {
	var p PublicKey
	if len(b) != KeySize {
		return p, fmt.Errorf("vault: public key is %d bytes, want %d", len(b), KeySize)
	}
	copy(p[:], b)
	return p, nil
}

// ParsePublicKeyBase64 parses the standard-base64 form that String returns.
// Only the canonical encoding (padded, no newlines, zero trailing bits) is
// accepted.
func ParsePublicKeyBase64(s string) (PublicKey, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("vault: public key: %w", err)
	}
	return ParsePublicKey(b)
}

// noCompare makes a struct not comparable with ==, so secrets are compared
// only with their constant-time Equal.
type noCompare [0]func()

// PrivateKey is an X25519 secret key. Like tweetnacl's
// nacl.box.keyPair.fromSecretKey it keeps the 32 bytes as given and clamps
// them only inside the scalar multiplication (RFC 7748 §5 decodeScalar25519).
//
// A PrivateKey never prints its bytes: fmt, %#v and log/slog show
// "vault.PrivateKey(redacted)". Compare keys with Equal; == does not
// compile. The zero value is not a valid key; use GenerateKey or
// NewPrivateKey.
//
// The key also keeps a crypto/ecdh key made once from the same bytes, so a
// box costs one scalar multiplication per key agreement (x/crypto's
// curve25519.X25519 recomputes the public key on every call). Destroy
// clears the bytes held here and drops the ecdh key, whose copy the
// standard library does not let us clear.
type PrivateKey struct {
	_   noCompare
	k   [KeySize]byte
	ek  *ecdh.PrivateKey
	pub PublicKey
}

// GenerateKey returns a new private key drawn from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	var seed [KeySize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("vault: generating key: %w", err)
	}
	k, err := NewPrivateKey(seed[:])
	clear(seed[:])
	return k, err
}

// NewPrivateKey returns the private key whose secret bytes are b (32 bytes,
// used as-is as tweetnacl does). b is copied; the caller may clear it.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("vault: private key is %d bytes, want %d", len(b), KeySize)
	}
	ek, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, errors.New("vault: private key rejected by crypto/ecdh")
	}
	k := &PrivateKey{ek: ek}
	copy(k.k[:], b)
	copy(k.pub[:], ek.PublicKey().Bytes())
	return k, nil
}

// Public returns the key's X25519 public key.
func (k *PrivateKey) Public() PublicKey { return k.pub }

// Bytes returns a copy of the 32 secret bytes, for sealing at rest. Handle
// the result as a secret and clear it when done.
func (k *PrivateKey) Bytes() []byte { return append([]byte(nil), k.k[:]...) }

// Equal reports, in constant time, whether k and o hold the same secret.
func (k *PrivateKey) Equal(o *PrivateKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// Destroy overwrites the secret bytes held here and drops the crypto/ecdh
// key (which the garbage collector frees but cannot be made to clear). The
// key must not be used afterwards; Open refuses it.
func (k *PrivateKey) Destroy() {
	clear(k.k[:])
	k.ek = nil
}

const redacted = "vault.PrivateKey(redacted)"

// Format prints a fixed placeholder whatever the verb, so a key passed to
// fmt by mistake does not leak. It has a value receiver so that a copied
// PrivateKey (not only a pointer) is covered too.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// GoString implements fmt.GoStringer with the same placeholder.
func (k PrivateKey) GoString() string { return redacted }

// LogValue implements slog.LogValuer: a logged key shows only its public half.
func (k PrivateKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("public", k.pub.String()))
}

func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not canonical standard base64")
	}
	// Strict rejects non-zero trailing bits; DecodeString ignores '\r' and
	// '\n', which a canonical form never holds.
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical standard base64")
	}
	return b, nil
}
