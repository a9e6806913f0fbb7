package vault

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20/salsa"
)

const (
	// NonceSize is the size of the XSalsa20 nonce that starts a content.
	NonceSize = 24
	// Overhead is the Poly1305 tag that crypto_box adds to a message.
	Overhead = secretbox.Overhead
	// MinContentSize is the size of the content that seals an empty message.
	MinContentSize = NonceSize + Overhead
)

var (
	// ErrOpen is returned when a box does not open: wrong key, wrong
	// encryptor key, or content altered. It says nothing more, on purpose.
	ErrOpen = errors.New("vault: box does not open")
	// ErrLowOrder is returned for a public key whose X25519 shared secret
	// is all zeros (RFC 7748 §6.1): a box made with it is readable by anyone.
	ErrLowOrder = errors.New("vault: public key has low order")
)

// Sealed is a box in idOS's stored form: Content = nonce(24) ‖ crypto_box
// output, and the ephemeral sender public key beside it.
type Sealed struct {
	Content            []byte
	EncryptorPublicKey PublicKey
}

// SealTo encrypts msg to recipient with NaCl crypto_box under a fresh
// ephemeral sender key pair and a fresh random nonce, both from crypto/rand.
// The ephemeral secret is erased before SealTo returns, so the caller cannot
// open the result either. It fails with ErrLowOrder for a low-order
// recipient key.
func SealTo(recipient PublicKey, msg []byte) (Sealed, error) {
	return seal(rand.Reader, recipient, msg)
}

func seal(r io.Reader, recipient PublicKey, msg []byte) (Sealed, error) {
	var buf [KeySize + NonceSize]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return Sealed{}, fmt.Errorf("vault: reading randomness: %w", err)
	}
	eph, err := NewPrivateKey(buf[:KeySize])
	if err != nil {
		return Sealed{}, err
	}
	defer eph.Destroy()
	var nonce [NonceSize]byte
	copy(nonce[:], buf[KeySize:])
	content, err := sealWith(eph, &nonce, recipient, msg)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Content: content, EncryptorPublicKey: eph.Public()}, nil
}

// sealWith is crypto_box(msg, nonce, recipient, eph) with the nonce
// prepended. Tests call it directly for known answers.
func sealWith(eph *PrivateKey, nonce *[NonceSize]byte, recipient PublicKey, msg []byte) ([]byte, error) {
	key, err := beforenm(eph, recipient)
	if err != nil {
		return nil, err
	}
	defer clear(key[:])
	out := make([]byte, NonceSize, NonceSize+Overhead+len(msg))
	copy(out, nonce[:])
	return secretbox.Seal(out, msg, nonce, &key), nil
}

// Open decrypts content (nonce(24) ‖ box) with the recipient's private key
// and the encryptor public key stored beside it. It returns ErrOpen if the
// box does not authenticate, and ErrLowOrder for a low-order encryptor key
// (which tweetnacl would accept; no honest sender makes one).
func Open(k *PrivateKey, content []byte, encryptor PublicKey) ([]byte, error) {
	if k == nil || k.ek == nil {
		return nil, errors.New("vault: open with an invalid private key")
	}
	if len(content) < MinContentSize {
		return nil, fmt.Errorf("vault: content of %d bytes is shorter than %d: %w", len(content), MinContentSize, ErrOpen)
	}
	key, err := beforenm(k, encryptor)
	if err != nil {
		return nil, err
	}
	defer clear(key[:])
	var nonce [NonceSize]byte
	copy(nonce[:], content[:NonceSize])
	msg, ok := secretbox.Open(nil, content[NonceSize:], &nonce, &key)
	if !ok {
		return nil, ErrOpen
	}
	return msg, nil
}

// Open decrypts s with the recipient's private key; see the function Open.
func (s Sealed) Open(k *PrivateKey) ([]byte, error) {
	return Open(k, s.Content, s.EncryptorPublicKey)
}

// beforenm is crypto_box_beforenm: k = HSalsa20(X25519(sk, pk), 0^16)
// ("Cryptography in NaCl" §7; the same key x/crypto's box.Precompute makes),
// except that an all-zero X25519 output is refused (RFC 7748 §6.1).
func beforenm(sk *PrivateKey, pk PublicKey) ([32]byte, error) {
	var key [32]byte
	s, err := x25519(sk, pk)
	if err != nil {
		return key, err
	}
	var zero [16]byte
	salsa.HSalsa20(&key, &zero, &s, &salsa.Sigma)
	clear(s[:])
	return key, nil
}

// x25519 is RFC 7748 §5 X25519(sk, pk), refusing an all-zero result.
func x25519(sk *PrivateKey, pk PublicKey) ([32]byte, error) {
	var s [32]byte
	if sk.ek == nil {
		return s, errors.New("vault: invalid private key")
	}
	p, err := ecdh.X25519().NewPublicKey(pk[:])
	if err != nil {
		return s, fmt.Errorf("vault: public key: %w", err)
	}
	out, err := sk.ek.ECDH(p)
	if err != nil {
		// crypto/ecdh refuses only an all-zero shared secret here.
		return s, ErrLowOrder
	}
	copy(s[:], out)
	clear(out)
	return s, nil
}
