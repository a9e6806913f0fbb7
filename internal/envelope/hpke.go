package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/codec"
)

// KEM identifiers allowed for sealed requests (draft-ietf-hpke-pq §3 and RFC
// 9180 §7.1).
const (
	KEMXWing  uint16 = 0x647a // MLKEM768-X25519, the default
	KEMX25519 uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
)

const (
	requestMagic  = "KMENV\x02"
	responseMagic = "KMRSP\x01"
	keyIDLen      = 16
	nonceLen      = 16
	macLen        = sha256.Size
	maxNameLen    = 255
	maxEncLen     = 1 << 12
	// MaxBody is the largest request or response body sealed or opened.
	MaxBody = 16 << 20

	info           = "keymesh envelope v1"
	exportHeader   = "keymesh envelope header mac v1"
	exportResponse = "keymesh envelope response key v1"
)

// The ciphersuite besides the KEM is fixed: HKDF-SHA256 and
// ChaCha20-Poly1305, the suite of the X-Wing test vectors in
// draft-ietf-hpke-pq (kem 0x647a, kdf 0x0001, aead 0x0003).
var (
	suiteKDF  = hpke.HKDFSHA256()
	suiteAEAD = hpke.ChaCha20Poly1305()
)

// ParsePublicKey decodes a node's HPKE public key for one of the allowed KEMs
// (KEMXWing, KEMX25519), as published in its attestation.
func ParsePublicKey(kemID uint16, b []byte) (hpke.PublicKey, error) {
	kem, err := allowedKEM(kemID)
	if err != nil {
		return nil, err
	}
	pk, err := kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("envelope: public key: %w", err)
	}
	return pk, nil
}

func allowedKEM(id uint16) (hpke.KEM, error) {
	switch id {
	case KEMXWing:
		return hpke.MLKEM768X25519(), nil
	case KEMX25519:
		return hpke.NewKEM(KEMX25519)
	}
	return nil, fmt.Errorf("envelope: KEM %#04x is not allowed", id)
}

// KeyID names a public key in an envelope header: the first 16 bytes of
// SHA-256(kem id ‖ public key).
func KeyID(pk hpke.PublicKey) [keyIDLen]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint16(nil, pk.KEM().ID()))
	h.Write(pk.Bytes())
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// NodeID names the node a request is sealed for: its Ed25519 identity
// public key, as its attestation (attest.Keys.Identity) and the cluster
// config name it. It is in every request's authenticated header, and a node
// opens only requests sealed for its own id, so a request captured on its
// way to one node is refused by another, even one holding the same request
// key.
type NodeID [32]byte

// NodeIDFromKey returns the NodeID of an identity public key (32 bytes).
func NodeIDFromKey(pub []byte) (NodeID, error) {
	var id NodeID
	if len(pub) != len(id) {
		return id, fmt.Errorf("envelope: node identity key of %d bytes, want %d", len(pub), len(id))
	}
	copy(id[:], pub)
	return id, nil
}

// Request is what a client seals: the node it is for, the JSON-RPC method,
// the scope id it acts in (empty if none), and the body.
type Request struct {
	Node   NodeID
	Method string
	Scope  string
	Body   []byte
}

// header is the public, authenticated part of a request envelope.
type header struct {
	kem, kdf, aead uint16
	keyID          [keyIDLen]byte
	node           NodeID
	unixMilli      uint64
	nonce          [nonceLen]byte
	method, scope  string
	enc            []byte
}

// encode writes magic ‖ kem ‖ kdf ‖ aead (u16 each) ‖ key id (16) ‖
// node id (32) ‖ timestamp (u64 Unix ms) ‖ nonce (16) ‖ method (u8 length) ‖ scope (u8
// length) ‖ enc (u16 length). The request envelope is this, the 32-byte
// header MAC, and the ciphertext (u32 length).
func (h *header) encode() []byte {
	b := make([]byte, 0, 128+len(h.method)+len(h.scope)+len(h.enc))
	b = append(b, requestMagic...)
	b = binary.BigEndian.AppendUint16(b, h.kem)
	b = binary.BigEndian.AppendUint16(b, h.kdf)
	b = binary.BigEndian.AppendUint16(b, h.aead)
	b = append(b, h.keyID[:]...)
	b = append(b, h.node[:]...)
	b = binary.BigEndian.AppendUint64(b, h.unixMilli)
	b = append(b, h.nonce[:]...)
	b = append(b, byte(len(h.method)))
	b = append(b, h.method...)
	b = append(b, byte(len(h.scope)))
	b = append(b, h.scope...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.enc)))
	b = append(b, h.enc...)
	return b
}

type parsedRequest struct {
	h          header
	headerLen  int // bytes of the encoded header
	mac        []byte
	ciphertext []byte
	aad        []byte // header ‖ mac
}

func parseRequest(b []byte) (*parsedRequest, error) {
	r := codec.NewReader(b, ErrMalformed)
	r.Magic(requestMagic, "a sealed request")
	var p parsedRequest
	p.h.kem = r.U16("kem")
	p.h.kdf = r.U16("kdf")
	p.h.aead = r.U16("aead")
	copy(p.h.keyID[:], r.Bytes(keyIDLen, "key id"))
	copy(p.h.node[:], r.Bytes(len(p.h.node), "node id"))
	p.h.unixMilli = r.U64("timestamp")
	copy(p.h.nonce[:], r.Bytes(nonceLen, "nonce"))
	p.h.method = string(r.Var8("method"))
	p.h.scope = string(r.Var8("scope"))
	p.h.enc = r.Var16("enc")
	p.headerLen = len(b) - r.Len()
	p.mac = r.Bytes(macLen, "header mac")
	aadLen := len(b) - r.Len()
	p.ciphertext = r.Var(MaxBody+64, "ciphertext")
	if err := r.Done(); err != nil {
		return nil, err
	}
	if p.h.method == "" {
		return nil, fmt.Errorf("%w: empty method", ErrMalformed)
	}
	p.aad = b[:aadLen:aadLen]
	return &p, nil
}

// Pending is the client's state for one sealed request: it opens the
// response. Use it for exactly one response.
type Pending struct {
	respKey func() *[32]byte // a closure, so that fmt cannot print it
	nonce   [nonceLen]byte
	used    bool
}

// SealRequest seals req to the node key pk (from a verified attestation) at
// time now. It returns the envelope to send with Content-Type ContentType and
// the state that opens the response.
func SealRequest(pk hpke.PublicKey, req Request, now time.Time) ([]byte, *Pending, error) {
	if _, err := allowedKEM(pk.KEM().ID()); err != nil {
		return nil, nil, err
	}
	if req.Method == "" || len(req.Method) > maxNameLen || len(req.Scope) > maxNameLen {
		return nil, nil, errors.New("envelope: method must be 1 to 255 bytes and scope at most 255")
	}
	if len(req.Body) > MaxBody {
		return nil, nil, fmt.Errorf("envelope: body of %d bytes, limit %d", len(req.Body), MaxBody)
	}
	if now.UnixMilli() < 0 {
		return nil, nil, errors.New("envelope: timestamp before 1970")
	}
	enc, sender, err := hpke.NewSender(pk, suiteKDF, suiteAEAD, []byte(info))
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	h := header{
		kem: pk.KEM().ID(), kdf: suiteKDF.ID(), aead: suiteAEAD.ID(),
		keyID: KeyID(pk), node: req.Node, unixMilli: uint64(now.UnixMilli()),
		method: req.Method, scope: req.Scope, enc: enc,
	}
	if _, err := rand.Read(h.nonce[:]); err != nil {
		return nil, nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	macKey, err := sender.Export(exportHeader, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	defer clear(macKey)
	respKey, err := exportKey(sender.Export)
	if err != nil {
		return nil, nil, err
	}
	out := h.encode()
	mac := hmac.New(sha256.New, macKey)
	mac.Write(out)
	out = mac.Sum(out)
	aad := bytes.Clone(out)
	ct, err := sender.Seal(aad, req.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	out = codec.AppendVar(out, ct)
	return out, &Pending{respKey: hide(respKey), nonce: h.nonce}, nil
}

// Opener opens sealed requests on the node. It is safe for concurrent use.
type Opener struct {
	keys   map[[keyIDLen]byte]hpke.PrivateKey
	node   NodeID
	nonces NonceStore
	window time.Duration
	now    func() time.Time
}

// NewOpener returns an Opener for the node's HPKE keys (the current one and
// any still accepted during a rotation), recording nonces in nonces and
// accepting timestamps from window before now (DefaultWindow if zero) to
// MaxSkew after it. now is time.Now if nil. The opener accepts only
// requests sealed for the zero NodeID until BindNode names its node.
func NewOpener(nonces NonceStore, window time.Duration, now func() time.Time, keys ...hpke.PrivateKey) (*Opener, error) {
	if nonces == nil {
		return nil, errors.New("envelope: no nonce store")
	}
	if len(keys) == 0 {
		return nil, errors.New("envelope: no keys")
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	o := &Opener{keys: make(map[[keyIDLen]byte]hpke.PrivateKey), nonces: nonces, window: window, now: now}
	for _, k := range keys {
		if _, err := allowedKEM(k.KEM().ID()); err != nil {
			return nil, err
		}
		o.keys[KeyID(k.PublicKey())] = k
	}
	return o, nil
}

// BindNode makes o open only requests sealed for node id (the node's
// identity key). Call it before the first Open.
func (o *Opener) BindNode(id NodeID) { o.node = id }

// inWindow reports whether ts is acceptable at now: at most window old, and
// at most MaxSkew (or window, if shorter) ahead of the node's clock. A
// nonce is remembered until ts+window, so at most window+MaxSkew.
func inWindow(ts, now time.Time, window time.Duration) bool {
	return !ts.Before(now.Add(-window)) && !ts.After(now.Add(min(window, MaxSkew)))
}

// Opened is a request that verified. Method and Scope are what the client
// sealed; the caller must check them against what it dispatches (Check).
type Opened struct {
	Method string
	Scope  string
	Time   time.Time
	Nonce  [nonceLen]byte
	Body   []byte

	respKey func() *[32]byte // a closure, so that fmt cannot print it
}

// Check returns ErrBinding unless the request was sealed for method and
// scope.
func (o *Opened) Check(method, scope string) error {
	if o.Method != method || o.Scope != scope {
		return fmt.Errorf("%w: sealed for %q in scope %q, used for %q in scope %q", ErrBinding, o.Method, o.Scope, method, scope)
	}
	return nil
}

// Open verifies and decrypts a request envelope. Checks run in this order,
// each failure wrapping its own error: parse (ErrMalformed), key id and suite
// (ErrUnknownKey), header MAC (ErrHeader), node id (ErrWrongNode, which
// wraps ErrBinding), timestamp (ErrExpired), AEAD (ErrCiphertext), nonce
// (ErrReplay). The nonce is recorded only when every other check passed, so
// a rejected request changes nothing, and junk that does not open records
// nothing.
//
// When the nonce store refuses the request's source (an error wrapping
// ErrBusy), Open returns that error together with an Opened whose Body is
// nil: the request authenticated, so the caller seals its refusal with
// SealResponse, and must not serve it.
func (o *Opener) Open(ctx context.Context, env []byte) (*Opened, error) {
	p, err := parseRequest(env)
	if err != nil {
		return nil, err
	}
	k, ok := o.keys[p.h.keyID]
	if !ok {
		return nil, fmt.Errorf("%w: key id %x", ErrUnknownKey, p.h.keyID)
	}
	recv, err := recipient(k, p.h.kem, p.h.kdf, p.h.aead, p.h.enc, []byte(info))
	if err != nil {
		return nil, err
	}
	macKey, err := recv.Export(exportHeader, 32)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	mac := hmac.New(sha256.New, macKey)
	clear(macKey)
	mac.Write(env[:p.headerLen])
	if !hmac.Equal(mac.Sum(nil), p.mac) {
		return nil, ErrHeader
	}
	if p.h.node != o.node {
		return nil, fmt.Errorf("%w: sealed for node %x", ErrWrongNode, p.h.node[:8])
	}
	ts := time.UnixMilli(int64(p.h.unixMilli))
	if now := o.now(); !inWindow(ts, now, o.window) {
		return nil, fmt.Errorf("%w: sealed at %s, now %s", ErrExpired, ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	body, err := recv.Open(p.aad, p.ciphertext)
	if err != nil {
		return nil, ErrCiphertext
	}
	respKey, err := exportKey(recv.Export)
	if err != nil {
		return nil, err
	}
	// The timestamp is acceptable up to and including ts+window, so the nonce
	// must be remembered strictly beyond it.
	opened := &Opened{Method: p.h.method, Scope: p.h.scope, Time: ts, Nonce: p.h.nonce, respKey: hide(respKey)}
	seen, err := o.nonces.Seen(ctx, append([]byte("hpke:"), p.h.nonce[:]...), ts.Add(o.window+time.Millisecond))
	if errors.Is(err, ErrBusy) {
		clear(body)
		return opened, err
	}
	if err != nil {
		return nil, fmt.Errorf("envelope: nonce store: %w", err)
	}
	if seen {
		return nil, ErrReplay
	}
	opened.Body = body
	return opened, nil
}

// SealResponse seals the response body with AES-256-GCM under the secret
// exported from the request's HPKE context:
// magic ‖ iv (12) ‖ ciphertext ‖ tag (16), with magic ‖ request nonce as
// associated data.
func (o *Opened) SealResponse(body []byte) ([]byte, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("envelope: body of %d bytes, limit %d", len(body), MaxBody)
	}
	aead, err := newGCM(o.respKey()[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(responseMagic)+12, len(responseMagic)+12+len(body)+16)
	copy(out, responseMagic)
	if _, err := rand.Read(out[len(responseMagic):]); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	iv := out[len(responseMagic):]
	return aead.Seal(out, iv, body, append([]byte(responseMagic), o.Nonce[:]...)), nil
}

// OpenResponse opens the node's response to the request p was made for.
// It fails with ErrMalformed or ErrCiphertext, and may succeed only once.
func (p *Pending) OpenResponse(resp []byte) ([]byte, error) {
	if p.used {
		return nil, errors.New("envelope: response already opened")
	}
	if len(resp) < len(responseMagic)+12+16 || !bytes.Equal(resp[:len(responseMagic)], []byte(responseMagic)) {
		return nil, fmt.Errorf("%w: not a sealed response", ErrMalformed)
	}
	aead, err := newGCM(p.respKey()[:])
	if err != nil {
		return nil, err
	}
	iv := resp[len(responseMagic) : len(responseMagic)+12]
	pt, err := aead.Open(nil, iv, resp[len(responseMagic)+12:], append([]byte(responseMagic), p.nonce[:]...))
	if err != nil {
		return nil, ErrCiphertext
	}
	p.used = true
	clear(p.respKey()[:])
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return cipher.NewGCM(blk)
}

// recipient sets up the receiving HPKE context for an envelope's suite and
// encapsulated key: a suite other than (k's KEM, HKDF-SHA256,
// ChaCha20-Poly1305) is ErrUnknownKey; an encapsulation that does not
// decapsulate (wrong length, low-order X25519 point) is ErrHeader, since enc
// is part of the header.
func recipient(k hpke.PrivateKey, kemID, kdfID, aeadID uint16, enc, info []byte) (*hpke.Recipient, error) {
	if kemID != k.KEM().ID() || kdfID != suiteKDF.ID() || aeadID != suiteAEAD.ID() {
		return nil, fmt.Errorf("%w: suite kem %#04x kdf %#04x aead %#04x", ErrUnknownKey, kemID, kdfID, aeadID)
	}
	r, err := hpke.NewRecipient(enc, k, suiteKDF, suiteAEAD, info)
	if err != nil {
		return nil, fmt.Errorf("%w: encapsulated key: %v", ErrHeader, err)
	}
	return r, nil
}

// hide wraps v in a closure: fmt prints a func as an address whatever the
// verb, even in a struct field where it cannot call a Format method.
func hide[T any](v T) func() T { return func() T { return v } }

// exportKey exports the response key from an HPKE context (RFC 9180 §5.3).
func exportKey(export func(string, int) ([]byte, error)) (*[32]byte, error) {
	b, err := export(exportResponse, 32)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	k := new([32]byte)
	copy(k[:], b)
	clear(b)
	return k, nil
}
