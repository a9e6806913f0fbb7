package record

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Alg is a signature algorithm for developer, credential and session keys.
type Alg uint8

const (
	// P256 is ECDSA over NIST P-256 with SHA-256 (FIPS 186-5); the public
	// key is the 65-byte uncompressed point, the signature the 64-byte
	// r‖s of WebCrypto, with s in the lower half of the order so that a
	// signature has one encoding.
	P256 Alg = 1
	// Ed25519 is RFC 8032 Ed25519 (32-byte key, 64-byte signature).
	Ed25519 Alg = 2
)

func (a Alg) String() string {
	switch a {
	case P256:
		return "p256"
	case Ed25519:
		return "ed25519"
	}
	return fmt.Sprintf("alg(%d)", uint8(a))
}

// PublicKey is a developer, credential or session public key.
type PublicKey struct {
	Alg Alg
	Key []byte // P256: 65-byte uncompressed point; Ed25519: 32 bytes
}

// ErrBadSignature is returned by Verify when a signature does not verify.
var ErrBadSignature = errors.New("record: signature does not verify")

// Check reports whether k is a well-formed key of its algorithm.
func (k PublicKey) Check() error {
	switch k.Alg {
	case P256:
		if len(k.Key) != 65 {
			return fmt.Errorf("%w: P-256 key must be 65 bytes", ErrMalformed)
		}
		if _, err := ecdh.P256().NewPublicKey(k.Key); err != nil {
			return fmt.Errorf("%w: P-256 key is not a point on the curve", ErrMalformed)
		}
	case Ed25519:
		if len(k.Key) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key must be 32 bytes", ErrMalformed)
		}
		if err := checkEd25519(k.Key); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown key algorithm %d", ErrMalformed, k.Alg)
	}
	return nil
}

// ID is the key's identifier: SHA-256 of its encoding.
func (k PublicKey) ID() [32]byte {
	var w Writer
	k.Encode(&w)
	return sha256.Sum256(w.Bytes())
}

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	return k.Alg == o.Alg && string(k.Key) == string(o.Key)
}

// Encode appends the key's canonical encoding: alg u8 ‖ key (var).
func (k PublicKey) Encode(w *Writer) {
	w.U8(uint8(k.Alg))
	w.Var(k.Key)
}

// DecodePublicKey reads a key written by Encode and checks it.
func DecodePublicKey(r *Reader) PublicKey {
	k := PublicKey{Alg: Alg(r.U8("key alg")), Key: r.Var(65, "key")}
	if r.Err() == nil {
		if err := k.Check(); err != nil {
			r.fail("%v", err)
		}
	}
	return k
}

// String is "p256:<base64url>" or "ed25519:<base64url>", the form the CLI
// and the JSON API use.
func (k PublicKey) String() string {
	return k.Alg.String() + ":" + base64.RawURLEncoding.EncodeToString(k.Key)
}

// ParsePublicKey parses the String form.
func ParsePublicKey(s string) (PublicKey, error) {
	alg, b64, ok := strings.Cut(s, ":")
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: public key %q: want p256:<base64url> or ed25519:<base64url>", ErrMalformed, s)
	}
	var k PublicKey
	switch alg {
	case "p256":
		k.Alg = P256
	case "ed25519":
		k.Alg = Ed25519
	default:
		return PublicKey{}, fmt.Errorf("%w: public key: unknown algorithm %q", ErrMalformed, alg)
	}
	var err error
	if k.Key, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key: bad base64url", ErrMalformed)
	}
	return k, k.Check()
}

// Ed25519 public keys that are refused: the encodings of the eight points
// of small order and every non-canonical encoding (y ≥ p). A small-order
// key A makes [k]A vanish (up to torsion), so "R = identity, S = 0"
// verifies under the identity key for every message (RFC 8032 §5.1.7 does
// not exclude such keys; libsodium's crypto_sign_verify_detached refuses
// them the same way). Keys are public, so math/big is fine here.
var (
	ed25519P = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// ed25519Y8 is the y-coordinate of the points of order 8 (±x, ±Y8
	// give the four of them); the others of small order have y = 0
	// (order 4), 1 (the identity) or p − 1 (order 2).
	ed25519Y8, _   = new(big.Int).SetString("2707385501144840649318225287225658788936804267575313519463743609750303402022", 10)
	ed25519SmallYs = []*big.Int{
		big.NewInt(0), big.NewInt(1),
		new(big.Int).Sub(ed25519P, big.NewInt(1)),
		ed25519Y8, new(big.Int).Sub(ed25519P, ed25519Y8),
	}
)

// checkEd25519 refuses a non-canonical or small-order Ed25519 key.
func checkEd25519(key []byte) error {
	le := make([]byte, 32)
	for i := range 32 {
		le[31-i] = key[i]
	}
	le[0] &= 0x7f // the sign of x
	y := new(big.Int).SetBytes(le)
	if y.Cmp(ed25519P) >= 0 {
		return fmt.Errorf("%w: Ed25519 key is not canonically encoded", ErrMalformed)
	}
	for _, s := range ed25519SmallYs {
		if y.Cmp(s) == 0 {
			return fmt.Errorf("%w: Ed25519 key has small order", ErrMalformed)
		}
	}
	return nil
}

var p256HalfN = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// Verify checks sig over msg. P-256 signs SHA-256(msg) (as WebCrypto's
// ECDSA with SHA-256 does); Ed25519 signs msg.
func (k PublicKey) Verify(msg, sig []byte) error {
	switch k.Alg {
	case P256:
		if len(sig) != 64 {
			return ErrBadSignature
		}
		x, y := elliptic.Unmarshal(elliptic.P256(), k.Key) //nolint:staticcheck // validated by Check
		if x == nil {
			return ErrBadSignature
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if s.Cmp(p256HalfN) > 0 {
			// High s: the malleated twin of a valid signature.
			return ErrBadSignature
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
		h := sha256.Sum256(msg)
		if !ecdsa.Verify(pub, h[:], r, s) {
			return ErrBadSignature
		}
		return nil
	case Ed25519:
		if len(k.Key) != ed25519.PublicKeySize || checkEd25519(k.Key) != nil || !ed25519.Verify(ed25519.PublicKey(k.Key), msg, sig) {
			return ErrBadSignature
		}
		return nil
	}
	return ErrBadSignature
}

// PrivateKey is a developer or session signing key. It never prints.
type PrivateKey struct {
	alg Alg
	p   *ecdsa.PrivateKey
	e   ed25519.PrivateKey
}

// GenerateKey makes a new key of alg.
func GenerateKey(alg Alg) (*PrivateKey, error) {
	switch alg {
	case P256:
		p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &PrivateKey{alg: alg, p: p}, nil
	case Ed25519:
		_, e, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return &PrivateKey{alg: alg, e: e}, nil
	}
	return nil, fmt.Errorf("record: unknown key algorithm %d", alg)
}

// Public returns the public key.
func (k *PrivateKey) Public() PublicKey {
	if k.alg == P256 {
		b, _ := k.p.PublicKey.Bytes()
		return PublicKey{Alg: P256, Key: b}
	}
	return PublicKey{Alg: Ed25519, Key: append([]byte{}, k.e.Public().(ed25519.PublicKey)...)}
}

// Sign signs msg as PublicKey.Verify expects.
func (k *PrivateKey) Sign(msg []byte) ([]byte, error) {
	if k.alg == Ed25519 {
		return ed25519.Sign(k.e, msg), nil
	}
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k.p, h[:])
	if err != nil {
		return nil, err
	}
	if s.Cmp(p256HalfN) > 0 {
		s.Sub(k.p.Params().N, s)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// String never shows the key.
func (k *PrivateKey) String() string { return "record.PrivateKey(" + k.alg.String() + ", redacted)" }

// GoString never shows the key.
func (k *PrivateKey) GoString() string { return k.String() }

// Format never shows the key.
func (k *PrivateKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// MarshalPrivate returns the key's secret encoding, "p256:<base64url
// scalar>" or "ed25519:<base64url seed>", for the CLI's key file.
func (k *PrivateKey) MarshalPrivate() string {
	if k.alg == Ed25519 {
		return "ed25519:" + base64.RawURLEncoding.EncodeToString(k.e.Seed())
	}
	b, _ := k.p.Bytes()
	return "p256:" + base64.RawURLEncoding.EncodeToString(b)
}

// ParsePrivateKey parses MarshalPrivate's form. Errors never hold the key.
func ParsePrivateKey(s string) (*PrivateKey, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return nil, errors.New("record: private key: want p256:<base64url> or ed25519:<base64url>")
	}
	b, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("record: private key: bad base64url")
	}
	switch alg {
	case "p256":
		p, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
		if err != nil {
			return nil, errors.New("record: private key: not a P-256 scalar")
		}
		return &PrivateKey{alg: P256, p: p}, nil
	case "ed25519":
		if len(b) != ed25519.SeedSize {
			return nil, errors.New("record: private key: Ed25519 seed must be 32 bytes")
		}
		return &PrivateKey{alg: Ed25519, e: ed25519.NewKeyFromSeed(b)}, nil
	}
	return nil, fmt.Errorf("record: private key: unknown algorithm %q", alg)
}
