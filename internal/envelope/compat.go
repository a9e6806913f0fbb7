package envelope

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keymesh/keymesh/internal/codec"
)

// Passport compatibility mode. The wire format of Passport's sealed requests
// is kept byte for byte:
//
//	X-Encrypted-Key: base64(RSA-OAEP(SHA-256, MGF1-SHA-256, empty label)(base64(k)))
//	body field:      base64(iv (12) ‖ AES-256-GCM_k(value) ‖ tag (16)), no AAD
//
// where k is a fresh 32-byte AES key per request and base64 is RFC 4648 §4
// with padding. keymesh adds one more sealed field, MetaField, whose value is
// (before sealing)
//
//	request:  "KMCQ\x02" ‖ u64 Unix ms ‖ nonce (16) ‖ node id (32) ‖ u8 len ‖ method ‖ u8 len ‖ scope ‖ digest (32)
//	response: "KMCR\x01" ‖ request nonce (16) ‖ digest (32)
//
// with digest = SHA-256 over the other fields sorted by name, each as
// u32 len ‖ name ‖ u32 len ‖ sealed value (the base64 text). The meta field
// gives replay protection, binds the request to one node (NodeID) and binds
// the set of fields, which Passport's format alone does not: without it a
// field could be moved to another name. A request without it, or with the
// version 1 meta (no node id), is refused (ErrMalformed).
//
// What the node tolerates, and what it refuses:
//
//   - AES key reuse is tolerated: the node cannot tell that a client wrapped
//     the same AES key again (RSA-OAEP is randomised), and it does not
//     remember keys. A client must still make a fresh key per request
//     (SealCompat does): every field of every request and response under one
//     key is an AES-GCM encryption under a random 96-bit IV, and NIST SP
//     800-38D §8.3 allows at most 2^32 of those per key before an IV
//     collision (which leaks the GHASH key and allows forgeries) becomes
//     likelier than 2^-32; and one exposed key opens every request that
//     reused it. Reuse does not let anyone swap fields or answers between
//     requests: each meta field binds its fields' digest and its own nonce.
//   - Refused: a request without the meta field or with an old one
//     (ErrMalformed), a wrapped key that is not base64 of 32 bytes
//     (ErrMalformed) or does not unwrap (ErrUnknownKey), a meta field that
//     does not authenticate (ErrHeader), a request for another node
//     (ErrWrongNode), a timestamp outside the window (ErrExpired), fields
//     added, removed, renamed, swapped or altered (ErrCiphertext), a
//     replayed nonce (ErrReplay), and a source over its share of the nonce
//     store (ErrBusy).
const MetaField = "_keymesh"

const (
	compatKeyLen    = 32
	gcmIVLen        = 12
	gcmTagLen       = 16
	maxFields       = 256
	maxFieldNameLen = 256
	compatReqMagic  = "KMCQ\x02"
	compatRespMagic = "KMCR\x01"
)

var b64 = base64.StdEncoding.Strict()

// CompatRequest is what a compatibility-mode client seals.
type CompatRequest struct {
	Node   NodeID
	Method string
	Scope  string
	Fields map[string][]byte // plaintext value of each body field
}

// CompatPending is the client's state for one request: it opens the response.
type CompatPending struct {
	key   func() *[compatKeyLen]byte // a closure, so that fmt cannot print it
	nonce [nonceLen]byte
	used  bool
}

// SealCompat seals req to the node's RSA key (from a verified attestation)
// at time now. It returns the X-Encrypted-Key header value and the body
// fields (including MetaField) to send as a JSON object of strings.
func SealCompat(pub *rsa.PublicKey, req CompatRequest, now time.Time) (string, map[string]string, *CompatPending, error) {
	if pub.N.BitLen() < 2048 {
		return "", nil, nil, errors.New("envelope: RSA key shorter than 2048 bits")
	}
	if req.Method == "" || len(req.Method) > maxNameLen || len(req.Scope) > maxNameLen {
		return "", nil, nil, errors.New("envelope: method must be 1 to 255 bytes and scope at most 255")
	}
	if err := checkFieldNames(req.Fields); err != nil {
		return "", nil, nil, err
	}
	key := new([compatKeyLen]byte)
	var nonce [nonceLen]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", nil, nil, fmt.Errorf("envelope: %w", err)
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", nil, nil, fmt.Errorf("envelope: %w", err)
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte(b64.EncodeToString(key[:])), nil)
	if err != nil {
		return "", nil, nil, fmt.Errorf("envelope: wrapping key: %w", err)
	}
	aead, err := newGCM(key[:])
	if err != nil {
		return "", nil, nil, err
	}
	body, err := sealFields(aead, req.Fields)
	if err != nil {
		return "", nil, nil, err
	}
	meta := []byte(compatReqMagic)
	meta = binary.BigEndian.AppendUint64(meta, uint64(now.UnixMilli()))
	meta = append(meta, nonce[:]...)
	meta = append(meta, req.Node[:]...)
	meta = append(meta, byte(len(req.Method)))
	meta = append(meta, req.Method...)
	meta = append(meta, byte(len(req.Scope)))
	meta = append(meta, req.Scope...)
	meta = append(meta, fieldDigest(body)...)
	if body[MetaField], err = sealField(aead, nil, meta); err != nil {
		return "", nil, nil, err
	}
	return b64.EncodeToString(wrapped), body, &CompatPending{key: hide(key), nonce: nonce}, nil
}

func checkFieldNames[V any](fields map[string]V) error {
	if len(fields) > maxFields {
		return fmt.Errorf("%w: %d fields, limit %d", ErrMalformed, len(fields), maxFields)
	}
	for name := range fields {
		if name == "" || len(name) > maxFieldNameLen {
			return fmt.Errorf("%w: field name length %d", ErrMalformed, len(name))
		}
		for i := 0; i < len(name); i++ {
			if name[i] < 0x20 || name[i] > 0x7e {
				return fmt.Errorf("%w: field names must be printable ASCII", ErrMalformed)
			}
		}
	}
	return nil
}

func sealFields(aead cipher.AEAD, fields map[string][]byte) (map[string]string, error) {
	if _, ok := fields[MetaField]; ok {
		return nil, fmt.Errorf("envelope: field name %q is reserved", MetaField)
	}
	out := make(map[string]string, len(fields)+1)
	total := 0
	for name, v := range fields {
		if total += len(v); total > MaxBody {
			return nil, fmt.Errorf("envelope: body over %d bytes", MaxBody)
		}
		s, err := sealField(aead, nil, v)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// sealField returns base64(iv ‖ ciphertext ‖ tag); iv is random unless given
// (tests only).
func sealField(aead cipher.AEAD, iv, plaintext []byte) (string, error) {
	buf := make([]byte, gcmIVLen, gcmIVLen+len(plaintext)+gcmTagLen)
	if iv != nil {
		copy(buf, iv)
	} else if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("envelope: %w", err)
	}
	return b64.EncodeToString(aead.Seal(buf, buf[:gcmIVLen], plaintext, nil)), nil
}

// openField opens base64(iv ‖ ciphertext ‖ tag). A value that is not strict
// base64 or too short wraps ErrMalformed; one that does not authenticate is
// ErrCiphertext.
// openFields opens every field of body but MetaField. On error it clears
// what it opened.
func openFields(aead cipher.AEAD, body map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(body)-1)
	for name, v := range body {
		if name == MetaField {
			continue
		}
		pt, err := openField(aead, v)
		if err != nil {
			for _, o := range out {
				clear(o)
			}
			return nil, fmt.Errorf("envelope: field %q: %w", name, err)
		}
		out[name] = pt
	}
	return out, nil
}

func openField(aead cipher.AEAD, s string) ([]byte, error) {
	raw, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: field is not base64", ErrMalformed)
	}
	if len(raw) < gcmIVLen+gcmTagLen {
		return nil, fmt.Errorf("%w: field of %d bytes", ErrMalformed, len(raw))
	}
	pt, err := aead.Open(nil, raw[:gcmIVLen], raw[gcmIVLen:], nil)
	if err != nil {
		return nil, ErrCiphertext
	}
	return pt, nil
}

// fieldDigest hashes every field but MetaField in byte order of names.
func fieldDigest(body map[string]string) []byte {
	names := make([]string, 0, len(body))
	for n := range body {
		if n != MetaField {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(n))))
		h.Write([]byte(n))
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(body[n]))))
		h.Write([]byte(body[n]))
	}
	return h.Sum(nil)
}

// oaepDecrypt is RSAES-OAEP-DECRYPT (RFC 8017 §7.1.2) with SHA-256 and
// MGF1-SHA-256, the only RSA operation this mode performs on the node.
func oaepDecrypt(priv *rsa.PrivateKey, ct, label []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), nil, priv, ct, label)
}

// CompatOpener opens compatibility-mode requests on the node. It is safe for
// concurrent use.
type CompatOpener struct {
	keys   []*rsa.PrivateKey
	node   NodeID
	nonces NonceStore
	window time.Duration
	now    func() time.Time
}

// NewCompatOpener returns a CompatOpener for the node's RSA keys (the current
// one first), with the same nonce store and window rules as NewOpener.
func NewCompatOpener(nonces NonceStore, window time.Duration, now func() time.Time, keys ...*rsa.PrivateKey) (*CompatOpener, error) {
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
	return &CompatOpener{keys: slices.Clone(keys), nonces: nonces, window: window, now: now}, nil
}

// BindNode makes o open only requests sealed for node id (the node's
// identity key). Call it before the first Open.
func (o *CompatOpener) BindNode(id NodeID) { o.node = id }

// CompatOpened is a compatibility-mode request that verified.
type CompatOpened struct {
	Method string
	Scope  string
	Time   time.Time
	Nonce  [nonceLen]byte
	Fields map[string][]byte // MetaField removed

	aead func() cipher.AEAD // a closure, so that fmt cannot print the key schedule
}

// Check returns ErrBinding unless the request was sealed for method and scope.
func (o *CompatOpened) Check(method, scope string) error {
	if o.Method != method || o.Scope != scope {
		return fmt.Errorf("%w: sealed for %q in scope %q, used for %q in scope %q", ErrBinding, o.Method, o.Scope, method, scope)
	}
	return nil
}

// Open verifies and decrypts a compatibility-mode request: the
// X-Encrypted-Key header value and the body's fields. Checks and their errors,
// in order: encodings (ErrMalformed), RSA-OAEP unwrap (ErrUnknownKey), the
// meta field (ErrHeader), node id (ErrWrongNode), timestamp (ErrExpired),
// field set digest and each field (ErrCiphertext), nonce (ErrReplay). The
// nonce is recorded last. As with Opener.Open, an error wrapping ErrBusy
// comes with a CompatOpened (Fields nil) to seal the refusal with.
func (o *CompatOpener) Open(ctx context.Context, encryptedKey string, body map[string]string) (*CompatOpened, error) {
	if err := checkFieldNames(body); err != nil {
		return nil, err
	}
	for name, v := range body {
		if raw, err := b64.DecodeString(v); err != nil || len(raw) < gcmIVLen+gcmTagLen {
			return nil, fmt.Errorf("%w: field %q is not base64(iv ‖ ciphertext ‖ tag)", ErrMalformed, name)
		}
	}
	wrapped, err := b64.DecodeString(encryptedKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrMalformed, HeaderEncryptedKey)
	}
	metaSealed, ok := body[MetaField]
	if !ok {
		return nil, fmt.Errorf("%w: no %q field (timestamp and nonce are required)", ErrMalformed, MetaField)
	}
	var keyText []byte
	for _, k := range o.keys {
		if keyText, err = oaepDecrypt(k, wrapped, nil); err == nil {
			break
		}
	}
	if keyText == nil {
		return nil, ErrUnknownKey
	}
	key := make([]byte, compatKeyLen)
	if len(keyText) != b64.EncodedLen(compatKeyLen) {
		clear(keyText)
		return nil, fmt.Errorf("%w: wrapped key is not base64 of 32 bytes", ErrMalformed)
	}
	n, err := b64.Decode(key, keyText)
	clear(keyText)
	if err != nil || n != compatKeyLen {
		return nil, fmt.Errorf("%w: wrapped key is not base64 of 32 bytes", ErrMalformed)
	}
	aead, err := newGCM(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	meta, err := openField(aead, metaSealed)
	if errors.Is(err, ErrCiphertext) {
		return nil, ErrHeader
	} else if err != nil {
		return nil, err
	}
	r := codec.NewReader(meta, ErrMalformed)
	r.Magic(compatReqMagic, "a request meta")
	out := &CompatOpened{aead: hide(aead)}
	ms := r.U64("timestamp")
	copy(out.Nonce[:], r.Bytes(nonceLen, "nonce"))
	var node NodeID
	copy(node[:], r.Bytes(len(node), "node id"))
	out.Method = string(r.Var8("method"))
	out.Scope = string(r.Var8("scope"))
	digest := r.Bytes(sha256.Size, "digest")
	if err := r.Done(); err != nil {
		return nil, err
	}
	if node != o.node {
		return nil, fmt.Errorf("%w: sealed for node %x", ErrWrongNode, node[:8])
	}
	out.Time = time.UnixMilli(int64(ms))
	if now := o.now(); !inWindow(out.Time, now, o.window) {
		return nil, fmt.Errorf("%w: sealed at %s, now %s", ErrExpired, out.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if subtle.ConstantTimeCompare(digest, fieldDigest(body)) != 1 {
		return nil, fmt.Errorf("%w: fields were added, removed, renamed or swapped", ErrCiphertext)
	}
	fields, err := openFields(aead, body)
	if err != nil {
		return nil, err
	}
	seen, err := o.nonces.Seen(ctx, append([]byte("compat:"), out.Nonce[:]...), out.Time.Add(o.window+time.Millisecond))
	if errors.Is(err, ErrBusy) {
		for _, v := range fields {
			clear(v)
		}
		return out, err
	}
	if err != nil {
		return nil, fmt.Errorf("envelope: nonce store: %w", err)
	}
	if seen {
		return nil, ErrReplay
	}
	out.Fields = fields
	return out, nil
}

// SealResponse seals response fields under the request's AES key, with a
// response MetaField bound to the request nonce.
func (o *CompatOpened) SealResponse(fields map[string][]byte) (map[string]string, error) {
	if err := checkFieldNames(fields); err != nil {
		return nil, err
	}
	body, err := sealFields(o.aead(), fields)
	if err != nil {
		return nil, err
	}
	meta := append([]byte(compatRespMagic), o.Nonce[:]...)
	meta = append(meta, fieldDigest(body)...)
	if body[MetaField], err = sealField(o.aead(), nil, meta); err != nil {
		return nil, err
	}
	return body, nil
}

// OpenResponse opens the node's response to the request p was made for.
// It may succeed once.
func (p *CompatPending) OpenResponse(body map[string]string) (map[string][]byte, error) {
	if p.used {
		return nil, errors.New("envelope: response already opened")
	}
	if err := checkFieldNames(body); err != nil {
		return nil, err
	}
	aead, err := newGCM(p.key()[:])
	if err != nil {
		return nil, err
	}
	metaSealed, ok := body[MetaField]
	if !ok {
		return nil, fmt.Errorf("%w: response has no %q field", ErrMalformed, MetaField)
	}
	meta, err := openField(aead, metaSealed)
	if errors.Is(err, ErrCiphertext) {
		return nil, ErrHeader
	} else if err != nil {
		return nil, err
	}
	want := append([]byte(compatRespMagic), p.nonce[:]...)
	want = append(want, fieldDigest(body)...)
	if subtle.ConstantTimeCompare(meta, want) != 1 {
		return nil, fmt.Errorf("%w: response is not for this request, or its fields changed", ErrCiphertext)
	}
	out, err := openFields(aead, body)
	if err != nil {
		return nil, err
	}
	p.used = true
	clear(p.key()[:])
	return out, nil
}
