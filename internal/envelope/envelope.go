// Package envelope seals API requests to a node's attested enclave key and
// seals the responses back, so that nothing between the client and the
// enclave (proxies, load balancers, the node's own HTTP stack) reads them.
//
// Two modes:
//
//   - HPKE (the default), RFC 9180 base mode through Go's crypto/hpke, with
//     the MLKEM768-X25519 (X-Wing, draft-ietf-hpke-pq) hybrid KEM by default
//     and DHKEM(X25519, HKDF-SHA256) allowed, HKDF-SHA256 and
//     ChaCha20-Poly1305. Each request is a fresh encapsulation. The header —
//     node id, method, scope id, timestamp, nonce — is authenticated twice: by an HMAC
//     under a key exported from the HPKE context (RFC 9180 §5.3), checked
//     first so that a changed header is reported as such, and as the AEAD's
//     associated data. The response is sealed with AES-256-GCM under another
//     secret exported from the same context. See SealRequest and Opener.
//
//   - Passport compatibility: a random AES-256-GCM key, each body field sealed
//     as base64(iv12 ‖ ciphertext ‖ tag16), and the X-Encrypted-Key header
//     carrying base64(RSA-OAEP-SHA256 (MGF1-SHA256, RFC 8017 §7.1) of the
//     base64 AES key) to the node's RSA-3072 key. keymesh adds one sealed
//     field, "_keymesh", holding the timestamp, nonce, node id, method, scope and a
//     digest of the other sealed fields, so requests cannot be replayed and
//     fields cannot be swapped. See SealCompat and CompatOpener.
//
// Both openers refuse a request sealed for another node (NodeID, the
// node's identity key, in the authenticated header), reject a replayed
// nonce through a NonceStore, and a timestamp outside the accepted window;
// each failure wraps a distinct sentinel error (ErrMalformed, ErrUnknownKey,
// ErrHeader, ErrCiphertext, ErrExpired, ErrReplay, ErrBinding,
// ErrWrongNode), and a request that fails changes nothing: its nonce is
// recorded only after everything else verified. The nonce store bounds
// what each source can record (ErrBusy), so that no one can fill it
// (MemoryNonceStore).
//
// The package is pure: no I/O beyond the NonceStore the caller supplies.
package envelope

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrMalformed: the envelope does not parse.
	ErrMalformed = errors.New("envelope: malformed")
	// ErrUnknownKey: the envelope is sealed to a key this node does not hold
	// (HPKE key id or suite unknown; RSA-OAEP decryption failed).
	ErrUnknownKey = errors.New("envelope: sealed to an unknown key")
	// ErrHeader: the authenticated header (the AAD: method, scope, timestamp,
	// nonce) was altered.
	ErrHeader = errors.New("envelope: authenticated header does not verify")
	// ErrCiphertext: the ciphertext was altered.
	ErrCiphertext = errors.New("envelope: ciphertext does not authenticate")
	// ErrExpired: the timestamp is outside the accepted window.
	ErrExpired = errors.New("envelope: timestamp outside the accepted window")
	// ErrReplay: the nonce was seen before.
	ErrReplay = errors.New("envelope: replayed request")
	// ErrBinding: the request is sealed for another method or scope (or
	// node: ErrWrongNode wraps it).
	ErrBinding = errors.New("envelope: sealed for another method or scope")
	// ErrWrongNode: the request is sealed for another node (its
	// authenticated header names another node id). It wraps ErrBinding.
	ErrWrongNode = fmt.Errorf("%w: sealed for another node", ErrBinding)
	// ErrPlaintext: an unsealed request reached a node that is not in dev mode.
	ErrPlaintext = errors.New("envelope: plaintext request refused (the node accepts only sealed requests)")
)

// DefaultWindow is how old a request's timestamp may be by the node's
// clock. A node remembers a nonce until its timestamp leaves the window.
const DefaultWindow = time.Minute

// MaxSkew is how far a request's timestamp may be ahead of the node's clock
// (less if the window is shorter). So a nonce is remembered at most
// DefaultWindow+MaxSkew (70 s), and a flood sealed ahead of the node's
// clock cannot push the nonce store's floor (MemoryNonceStore) past
// requests sealed now unless it fills the whole store within MaxSkew. The
// Go SDK seals with the node's clock, as learnt from its signed attestation
// time, so only latency and drift count against the window and the skew.
const MaxSkew = 10 * time.Second

// HTTP names.
const (
	// ContentType marks an HPKE-sealed request or response body.
	ContentType = "application/keymesh-sealed"
	// HeaderEncryptedKey carries the RSA-wrapped AES key in compatibility mode.
	HeaderEncryptedKey = "X-Encrypted-Key"
)

// Mode is how a request body is protected.
type Mode int

const (
	ModePlaintext Mode = iota
	ModeHPKE
	ModeCompat
)

func (m Mode) String() string {
	switch m {
	case ModeHPKE:
		return "hpke"
	case ModeCompat:
		return "compat"
	}
	return "plaintext"
}

// DetectMode says which mode an HTTP request uses, from its headers.
func DetectMode(h http.Header) Mode {
	if h.Get(HeaderEncryptedKey) != "" {
		return ModeCompat
	}
	if ct := h.Get("Content-Type"); len(ct) >= len(ContentType) && ct[:len(ContentType)] == ContentType {
		return ModeHPKE
	}
	return ModePlaintext
}

// Admit returns ErrPlaintext for a plaintext request unless allowPlaintext
// (the node's explicit dev flag) is set.
func Admit(m Mode, allowPlaintext bool) error {
	if m == ModePlaintext && !allowPlaintext {
		return ErrPlaintext
	}
	return nil
}
