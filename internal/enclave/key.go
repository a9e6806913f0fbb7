package enclave

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
)

// KeyKind says what a Key is for.
type KeyKind uint8

const (
	// KeyEd25519 is a signing key (node identity, peer TLS).
	KeyEd25519 KeyKind = 1
	// KeyHPKEXWing is an HPKE MLKEM768-X25519 (X-Wing) decapsulation key,
	// the default sealed-request key.
	KeyHPKEXWing KeyKind = 2
	// KeyHPKEX25519 is an HPKE DHKEM(X25519, HKDF-SHA256) key.
	KeyHPKEX25519 KeyKind = 3
	// KeyRSA3072 is an RSA-3072 key for the Passport-compatible envelope
	// (RSA-OAEP-SHA256).
	KeyRSA3072 KeyKind = 4
	// KeySecret32 is 32 random bytes (a session secret, a MAC key).
	KeySecret32 KeyKind = 5
)

func (k KeyKind) String() string {
	switch k {
	case KeyEd25519:
		return "ed25519"
	case KeyHPKEXWing:
		return "hpke-mlkem768x25519"
	case KeyHPKEX25519:
		return "hpke-x25519"
	case KeyRSA3072:
		return "rsa-3072"
	case KeySecret32:
		return "secret32"
	}
	return fmt.Sprintf("KeyKind(%d)", uint8(k))
}

// Key is a private key held by the enclave. It never prints its secret: every
// fmt verb shows only the kind. Compare keys with Equal, not ==.
type Key struct {
	_ [0]func() // not comparable
	// Behind a closure: fmt prints a func as an address whatever the verb,
	// even inside a struct field where it cannot call Format.
	state func() *keyState
}

// hide wraps v so that fmt cannot reach it.
func hide[T any](v T) func() T { return func() T { return v } }

func (k *Key) s() *keyState { return k.state() }

type keyState struct {
	kind KeyKind
	raw  []byte // canonical secret encoding (see marshal)

	ed   ed25519.PrivateKey
	hpke hpke.PrivateKey
	rsa  *rsa.PrivateKey
}

// NewKey generates a key of the given kind from rand. Backends call it with
// their own randomness; callers use Backend.GenerateKey.
func NewKey(kind KeyKind, rand io.Reader) (*Key, error) {
	var seed []byte
	switch kind {
	case KeyEd25519, KeyHPKEXWing, KeyHPKEX25519, KeySecret32:
		seed = make([]byte, 32)
		if _, err := io.ReadFull(rand, seed); err != nil {
			return nil, fmt.Errorf("enclave: generating %v key: %w", kind, err)
		}
		defer clear(seed)
	case KeyRSA3072:
		// Since Go 1.26 rsa.GenerateKey ignores rand and always uses the
		// system generator (inside the enclave, the enclave's).
		priv, err := rsa.GenerateKey(rand, 3072)
		if err != nil {
			return nil, fmt.Errorf("enclave: generating %v key: %w", kind, err)
		}
		seed, err = x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("enclave: encoding %v key: %w", kind, err)
		}
		defer clear(seed)
	default:
		return nil, fmt.Errorf("enclave: unknown key kind %d", uint8(kind))
	}
	return parseKey(kind, seed)
}

// ParseKey decodes the canonical encoding of a Key (kind byte, then a 32-byte
// seed or PKCS #8 for RSA). It is strict: anything but the exact canonical
// encoding is an error wrapping ErrMalformed.
func ParseKey(b []byte) (*Key, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty key", ErrMalformed)
	}
	return parseKey(KeyKind(b[0]), b[1:])
}

func parseKey(kind KeyKind, body []byte) (*Key, error) {
	st := &keyState{kind: kind, raw: append([]byte{byte(kind)}, body...)}
	k := &Key{state: hide(st)}
	switch kind {
	case KeyEd25519, KeyHPKEXWing, KeyHPKEX25519, KeySecret32:
		if len(body) != 32 {
			return nil, fmt.Errorf("%w: %v key is %d bytes, want 32", ErrMalformed, kind, len(body))
		}
	}
	switch kind {
	case KeyEd25519:
		st.ed = ed25519.NewKeyFromSeed(body)
	case KeyHPKEXWing:
		p, err := hpke.MLKEM768X25519().NewPrivateKey(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v key: %v", ErrMalformed, kind, err)
		}
		st.hpke = p
	case KeyHPKEX25519:
		sk, err := ecdh.X25519().NewPrivateKey(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v key: %v", ErrMalformed, kind, err)
		}
		p, err := hpke.NewDHKEMPrivateKey(sk)
		if err != nil {
			return nil, fmt.Errorf("%w: %v key: %v", ErrMalformed, kind, err)
		}
		st.hpke = p
	case KeyRSA3072:
		p, err := x509.ParsePKCS8PrivateKey(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v key: %v", ErrMalformed, kind, err)
		}
		r, ok := p.(*rsa.PrivateKey)
		if !ok || r.N.BitLen() != 3072 {
			return nil, fmt.Errorf("%w: not an RSA-3072 key", ErrMalformed)
		}
		again, err := x509.MarshalPKCS8PrivateKey(r)
		if err != nil || !bytes.Equal(again, body) {
			return nil, fmt.Errorf("%w: non-canonical RSA key encoding", ErrMalformed)
		}
		st.rsa = r
	case KeySecret32:
	default:
		return nil, fmt.Errorf("%w: unknown key kind %d", ErrMalformed, uint8(kind))
	}
	return k, nil
}

func (k *Key) marshal() []byte { return bytes.Clone(k.s().raw) }

// Kind returns the key's kind.
func (k *Key) Kind() KeyKind { return k.s().kind }

// Public returns the public key bytes a client needs: the raw 32-byte Ed25519
// key, the HPKE SerializePublicKey output, or the RSA SubjectPublicKeyInfo DER.
// It is nil for KeySecret32.
func (k *Key) Public() []byte {
	switch k.s().kind {
	case KeyEd25519:
		return bytes.Clone(k.s().ed.Public().(ed25519.PublicKey))
	case KeyHPKEXWing, KeyHPKEX25519:
		return k.s().hpke.PublicKey().Bytes()
	case KeyRSA3072:
		der, err := x509.MarshalPKIXPublicKey(&k.s().rsa.PublicKey)
		if err != nil {
			return nil
		}
		return der
	}
	return nil
}

// Signer returns the Ed25519 signer, or an error for other kinds.
func (k *Key) Signer() (crypto.Signer, error) {
	if k.s().kind != KeyEd25519 {
		return nil, fmt.Errorf("enclave: %v key cannot sign", k.s().kind)
	}
	return k.s().ed, nil
}

// HPKE returns the HPKE private key of a KeyHPKEXWing or KeyHPKEX25519 key.
func (k *Key) HPKE() (hpke.PrivateKey, error) {
	if k.s().hpke == nil {
		return nil, fmt.Errorf("enclave: %v key is not an HPKE key", k.s().kind)
	}
	return k.s().hpke, nil
}

// RSA returns the RSA private key of a KeyRSA3072 key.
func (k *Key) RSA() (*rsa.PrivateKey, error) {
	if k.s().rsa == nil {
		return nil, fmt.Errorf("enclave: %v key is not an RSA key", k.s().kind)
	}
	return k.s().rsa, nil
}

// Secret returns a copy of the 32 bytes of a KeySecret32 key. The caller
// should clear it when done.
func (k *Key) Secret() ([]byte, error) {
	if k.s().kind != KeySecret32 {
		return nil, errors.New("enclave: not a secret32 key")
	}
	return bytes.Clone(k.s().raw[1:]), nil
}

// Equal reports whether k and o are the same key, in constant time.
func (k *Key) Equal(o *Key) bool {
	return subtle.ConstantTimeCompare(k.s().raw, o.s().raw) == 1
}

// Format prints only the kind, for every verb, so that a Key in a log line or
// an error never shows secret bytes.
func (k *Key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "enclave.Key(%v, redacted)", k.s().kind)
}

// Destroy overwrites the key's canonical secret encoding. The parsed forms
// held by the standard library cannot be cleared; drop the Key afterwards.
func (k *Key) Destroy() { clear(k.s().raw) }
