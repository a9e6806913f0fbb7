package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"unicode/utf8"

	"github.com/keymesh/keymesh/internal/codec"
)

// Size limits of a credential record.
const (
	MaxPublicNotes = 64 << 10
	MaxContentSize = 64 << 20
	SignatureSize  = ed25519.SignatureSize
)

var (
	// ErrSignature is returned when an issuer signature does not verify.
	ErrSignature = errors.New("vault: issuer signature does not verify")
	// ErrContentHash is returned when a plaintext's SHA-256 is not the
	// content hash it should have.
	ErrContentHash = errors.New("vault: content hash does not match")
)

// ContentHash is SHA-256 of a credential's plaintext. idOS stores it as
// lowercase hex (hexEncodeSha256Hash).
type ContentHash [sha256.Size]byte

// HashContent returns the content hash of plaintext.
func HashContent(plaintext []byte) ContentHash { return sha256.Sum256(plaintext) }

// String returns the lowercase hex form idOS stores.
func (h ContentHash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is unset.
func (h ContentHash) IsZero() bool { return h == ContentHash{} }

// ParseContentHash parses the hex form (either case).
func ParseContentHash(s string) (ContentHash, error) {
	var h ContentHash
	b, err := decodeHex(s, len(h))
	if err != nil {
		return h, fmt.Errorf("vault: content hash: %w", err)
	}
	copy(h[:], b)
	return h, nil
}

// IssuerPublicKey is an issuer's Ed25519 public key (RFC 8032 §5.1.5), the
// issuer_auth_public_key of idOS, which stores it as lowercase hex.
type IssuerPublicKey [ed25519.PublicKeySize]byte

// String returns the lowercase hex form.
func (p IssuerPublicKey) String() string { return hex.EncodeToString(p[:]) }

// ParseIssuerPublicKeyHex parses the hex form (either case).
func ParseIssuerPublicKeyHex(s string) (IssuerPublicKey, error) {
	var p IssuerPublicKey
	b, err := decodeHex(s, len(p))
	if err != nil {
		return p, fmt.Errorf("vault: issuer public key: %w", err)
	}
	copy(p[:], b)
	return p, nil
}

// IssuerKey is an issuer's Ed25519 signing key. Like PrivateKey it never
// prints and is not comparable with ==.
type IssuerKey struct {
	_ noCompare
	k ed25519.PrivateKey
}

// GenerateIssuerKey returns a new issuer key from crypto/rand.
func GenerateIssuerKey() (*IssuerKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("vault: generating issuer key: %w", err)
	}
	return &IssuerKey{k: k}, nil
}

// NewIssuerKey returns the issuer key for a 32-byte RFC 8032 seed, or for a
// 64-byte seed ‖ public key as tweetnacl's nacl.sign secret keys are (the
// public half must match the seed).
func NewIssuerKey(b []byte) (*IssuerKey, error) {
	switch len(b) {
	case ed25519.SeedSize:
		return &IssuerKey{k: ed25519.NewKeyFromSeed(b)}, nil
	case ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if subtle.ConstantTimeCompare(k[ed25519.SeedSize:], b[ed25519.SeedSize:]) != 1 {
			return nil, errors.New("vault: issuer key: public half does not match the seed")
		}
		return &IssuerKey{k: k}, nil
	}
	return nil, fmt.Errorf("vault: issuer key is %d bytes, want 32 or 64", len(b))
}

// Public returns the issuer's public key.
func (k *IssuerKey) Public() IssuerPublicKey {
	var p IssuerPublicKey
	if len(k.k) == ed25519.PrivateKeySize {
		copy(p[:], k.k[ed25519.SeedSize:])
	}
	return p
}

// Sign returns the Ed25519 signature of msg.
func (k *IssuerKey) Sign(msg []byte) [SignatureSize]byte {
	var s [SignatureSize]byte
	copy(s[:], ed25519.Sign(k.k, msg))
	return s
}

// Format prints a fixed placeholder whatever the verb.
func (k IssuerKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "vault.IssuerKey(redacted)")
}

// GoString implements fmt.GoStringer with the same placeholder.
func (k IssuerKey) GoString() string { return "vault.IssuerKey(redacted)" }

// LogValue implements slog.LogValuer with the public key only.
func (k IssuerKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("public", k.Public().String()))
}

// Credential is an idOS credential record. Content is nonce(24) ‖ box sealed
// to the holder; the two signatures are the issuer's, as idOS checks them
// (idos.assert_credential_signatures):
//
//	PublicNotesSignature = Ed25519(issuer, UTF-8(PublicNotes))
//	BroaderSignature     = Ed25519(issuer, PublicNotesSignature ‖ Content)
//
// ContentHash, SHA-256 of the plaintext, is set by Issue and checked by
// Open when it is not zero. A copy made for a grantee has empty PublicNotes
// (idOS requires it).
type Credential struct {
	ID                   string
	UserID               string
	PublicNotes          string
	Content              []byte
	EncryptorPublicKey   PublicKey
	IssuerAuthPublicKey  IssuerPublicKey
	PublicNotesSignature [SignatureSize]byte
	BroaderSignature     [SignatureSize]byte
	ContentHash          ContentHash
}

// Issue seals plaintext to recipient under a fresh ephemeral key, signs the
// record as issuer and gives it a fresh random id. userID must be a valid
// user id, or empty for a copy whose owner the store fills in.
func Issue(issuer *IssuerKey, userID, publicNotes string, plaintext []byte, recipient PublicKey) (*Credential, error) {
	if userID != "" {
		if err := ValidUserID(userID); err != nil {
			return nil, err
		}
	}
	if err := checkNotes(publicNotes); err != nil {
		return nil, err
	}
	if len(plaintext)+MinContentSize > MaxContentSize {
		return nil, fmt.Errorf("vault: plaintext of %d bytes is too large", len(plaintext))
	}
	s, err := SealTo(recipient, plaintext)
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	c := &Credential{
		ID:                 id,
		UserID:             userID,
		PublicNotes:        publicNotes,
		Content:            s.Content,
		EncryptorPublicKey: s.EncryptorPublicKey,
		ContentHash:        HashContent(plaintext),
	}
	c.Sign(issuer)
	return c, nil
}

// Sign sets IssuerAuthPublicKey and both issuer signatures over the current
// PublicNotes and Content. Call it again after changing either.
func (c *Credential) Sign(issuer *IssuerKey) {
	c.IssuerAuthPublicKey = issuer.Public()
	c.PublicNotesSignature = issuer.Sign([]byte(c.PublicNotes))
	c.BroaderSignature = issuer.Sign(broaderMessage(c.PublicNotesSignature[:], c.Content))
}

func broaderMessage(pns, content []byte) []byte {
	m := make([]byte, 0, len(pns)+len(content))
	return append(append(m, pns...), content...)
}

// VerifyPublicNotesSignature checks sig = Ed25519(issuer, UTF-8(notes)).
func VerifyPublicNotesSignature(issuer IssuerPublicKey, notes string, sig []byte) error {
	if !ed25519.Verify(issuer[:], []byte(notes), sig) {
		return fmt.Errorf("%w: public_notes_signature", ErrSignature)
	}
	return nil
}

// VerifyBroaderSignature checks sig = Ed25519(issuer, publicNotesSig ‖ content).
func VerifyBroaderSignature(issuer IssuerPublicKey, publicNotesSig, content, sig []byte) error {
	if !ed25519.Verify(issuer[:], broaderMessage(publicNotesSig, content), sig) {
		return fmt.Errorf("%w: broader_signature", ErrSignature)
	}
	return nil
}

// Verify checks both issuer signatures against IssuerAuthPublicKey. It
// does not decrypt, so it says nothing about ContentHash.
func (c *Credential) Verify() error {
	if err := VerifyPublicNotesSignature(c.IssuerAuthPublicKey, c.PublicNotes, c.PublicNotesSignature[:]); err != nil {
		return err
	}
	return VerifyBroaderSignature(c.IssuerAuthPublicKey, c.PublicNotesSignature[:], c.Content, c.BroaderSignature[:])
}

// Sealed returns the credential's box.
func (c *Credential) Sealed() Sealed {
	return Sealed{Content: c.Content, EncryptorPublicKey: c.EncryptorPublicKey}
}

// Open decrypts the content with the holder's key and, when ContentHash is
// set, checks it (ErrContentHash). It does not check the signatures; call
// Verify for that.
func (c *Credential) Open(k *PrivateKey) ([]byte, error) {
	pt, err := Open(k, c.Content, c.EncryptorPublicKey)
	if err != nil {
		return nil, err
	}
	if !c.ContentHash.IsZero() {
		if err := checkHash(pt, c.ContentHash); err != nil {
			clear(pt)
			return nil, err
		}
	}
	return pt, nil
}

func checkHash(pt []byte, want ContentHash) error {
	got := HashContent(pt)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return ErrContentHash
	}
	return nil
}

func checkNotes(notes string) error {
	if len(notes) > MaxPublicNotes {
		return fmt.Errorf("vault: public notes of %d bytes exceed %d", len(notes), MaxPublicNotes)
	}
	if !utf8.ValidString(notes) {
		return errors.New("vault: public notes are not valid UTF-8")
	}
	return nil
}

// credentialJSON is idOS's InsertableIDOSCredential: content, encryptor key
// and signatures in standard base64, issuer key and content hash in hex.
type credentialJSON struct {
	ID                   string `json:"id,omitempty"`
	UserID               string `json:"user_id,omitempty"`
	PublicNotes          string `json:"public_notes"`
	Content              string `json:"content"`
	EncryptorPublicKey   string `json:"encryptor_public_key"`
	IssuerAuthPublicKey  string `json:"issuer_auth_public_key"`
	PublicNotesSignature string `json:"public_notes_signature"`
	BroaderSignature     string `json:"broader_signature"`
	ContentHash          string `json:"content_hash,omitempty"`
}

// MarshalJSON encodes the credential in idOS's field names and encodings.
func (c *Credential) MarshalJSON() ([]byte, error) {
	j := credentialJSON{
		ID:                   c.ID,
		UserID:               c.UserID,
		PublicNotes:          c.PublicNotes,
		Content:              encodeBase64(c.Content),
		EncryptorPublicKey:   c.EncryptorPublicKey.String(),
		IssuerAuthPublicKey:  c.IssuerAuthPublicKey.String(),
		PublicNotesSignature: encodeBase64(c.PublicNotesSignature[:]),
		BroaderSignature:     encodeBase64(c.BroaderSignature[:]),
	}
	if !c.ContentHash.IsZero() {
		j.ContentHash = c.ContentHash.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON (or the idOS SDK) produces; see
// ParseCredentialJSON.
func (c *Credential) UnmarshalJSON(b []byte) error {
	out, err := ParseCredentialJSON(b)
	if err != nil {
		return err
	}
	*c = *out
	return nil
}

// ParseCredentialJSON decodes an idOS credential object strictly: unknown
// fields, non-canonical base64, wrong key or signature sizes, ids that are
// not UUIDs and anything after the object are errors. Empty id and user_id
// are allowed (idOS fills them in). As with encoding/json generally, field
// names match case-insensitively and a repeated field keeps its last value;
// MarshalJSON always writes the one canonical form. It does not verify the
// signatures.
func ParseCredentialJSON(b []byte) (*Credential, error) {
	var j credentialJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("vault: credential JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("vault: credential JSON: trailing data")
	}
	c := &Credential{ID: j.ID, UserID: j.UserID, PublicNotes: j.PublicNotes}
	var err error
	if c.Content, err = decodeBase64(j.Content); err != nil {
		return nil, fmt.Errorf("vault: credential content: %w", err)
	}
	if c.EncryptorPublicKey, err = ParsePublicKeyBase64(j.EncryptorPublicKey); err != nil {
		return nil, err
	}
	if c.IssuerAuthPublicKey, err = ParseIssuerPublicKeyHex(j.IssuerAuthPublicKey); err != nil {
		return nil, err
	}
	if err := decodeSig(j.PublicNotesSignature, c.PublicNotesSignature[:], "public_notes_signature"); err != nil {
		return nil, err
	}
	if err := decodeSig(j.BroaderSignature, c.BroaderSignature[:], "broader_signature"); err != nil {
		return nil, err
	}
	if j.ContentHash != "" {
		if c.ContentHash, err = ParseContentHash(j.ContentHash); err != nil {
			return nil, err
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeSig(s string, dst []byte, name string) error {
	b, err := decodeBase64(s)
	if err != nil {
		return fmt.Errorf("vault: %s: %w", name, err)
	}
	if len(b) != len(dst) {
		return fmt.Errorf("vault: %s is %d bytes, want %d", name, len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

// check validates field formats shared by every decoder.
func (c *Credential) check() error {
	if c.ID != "" {
		if err := ValidID(c.ID); err != nil {
			return fmt.Errorf("vault: credential id: %w", err)
		}
	}
	if c.UserID != "" {
		if err := ValidID(c.UserID); err != nil {
			return fmt.Errorf("vault: credential user id: %w", err)
		}
	}
	if err := checkNotes(c.PublicNotes); err != nil {
		return err
	}
	if len(c.Content) < MinContentSize || len(c.Content) > MaxContentSize {
		return fmt.Errorf("vault: credential content of %d bytes, want %d to %d", len(c.Content), MinContentSize, MaxContentSize)
	}
	return nil
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const credentialVersion = 1

// MarshalBinary encodes the credential for replication:
//
//	'C' ‖ version(1)=1 ‖ str(id) ‖ str(user id) ‖ str(public notes) ‖
//	bytes(content) ‖ encryptor(32) ‖ issuer(32) ‖ pns(64) ‖ bs(64) ‖ hash(32)
//
// where str and bytes are a 4-byte big-endian length and the bytes.
func (c *Credential) MarshalBinary() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var e codec.Writer
	e.Grow(300 + len(c.PublicNotes) + len(c.Content))
	e.U8(typeCredential)
	e.U8(credentialVersion)
	e.String(c.ID)
	e.String(c.UserID)
	e.String(c.PublicNotes)
	e.Var(c.Content)
	e.Fixed(c.EncryptorPublicKey[:])
	e.Fixed(c.IssuerAuthPublicKey[:])
	e.Fixed(c.PublicNotesSignature[:])
	e.Fixed(c.BroaderSignature[:])
	e.Fixed(c.ContentHash[:])
	return e.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary produced, strictly. On error c
// is unchanged.
func (c *Credential) UnmarshalBinary(b []byte) error {
	d := codec.NewReader(b, errCredentialEncoding)
	readHeader(&d, typeCredential, credentialVersion, "credential")
	var out Credential
	out.ID = string(d.Var(36, "id"))
	out.UserID = string(d.Var(36, "user id"))
	out.PublicNotes = string(d.Var(MaxPublicNotes, "public notes"))
	out.Content = bytes.Clone(d.Var(MaxContentSize, "content"))
	copy(out.EncryptorPublicKey[:], d.Bytes(KeySize, "encryptor public key"))
	copy(out.IssuerAuthPublicKey[:], d.Bytes(ed25519.PublicKeySize, "issuer public key"))
	copy(out.PublicNotesSignature[:], d.Bytes(SignatureSize, "public notes signature"))
	copy(out.BroaderSignature[:], d.Bytes(SignatureSize, "broader signature"))
	copy(out.ContentHash[:], d.Bytes(sha256.Size, "content hash"))
	if err := d.Done(); err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	*c = out
	return nil
}
