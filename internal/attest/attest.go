// Package attest binds a node's encryption keys to an enclave quote, and
// verifies that binding on the client before anything is sealed to those
// keys. The node serves a Document at GET /attestation (and the
// keymesh_attestation method); the Go SDK and the CLI call Verify with the
// client's Policy: the trust roots of the platform (for the sim backend, the
// cluster's platform key, required; for AWS Nitro, AMD SEV-SNP and Intel TDX,
// the vendor roots pinned in packages attest/nitro, attest/sevsnp and
// attest/tdx, see hardware.go), the expected measurement pinned in its
// config or trust on first use with a warning, and the weakest KEM accepted.
// Every root comes from the client; nothing in the document vouches for
// itself.
//
// The quote's REPORT_DATA is SHA-512("keymesh attestation v2\x00" ‖ u32 len
// ‖ keys ‖ fresh), where keys is the canonical encoding of Keys and fresh
// that of Freshness (issued and expiry times, and the client's challenge) —
// the same construction as an SEV-SNP or TDX report binding a TLS key
// (report data is 64 bytes on every platform). A client that sends a fresh
// challenge knows the quote was made for it; any client refuses a document
// past its expiry, so a captured attestation cannot be replayed for long,
// and refuses one whose identity key is not the node it means to talk to.
package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/attest/sevsnp"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/envelope"
)

// Keys are the public keys a node attests.
type Keys struct {
	HPKEKEM  uint16 // envelope.KEMXWing or envelope.KEMX25519
	HPKE     []byte // HPKE public key (SerializePublicKey)
	RSA      []byte // RSA-3072 SubjectPublicKeyInfo DER, for compatibility mode; may be empty
	Identity []byte // Ed25519 node identity key; may be empty
}

const (
	keysMagic   = "KMKEYS\x01"
	maxKeyLen   = 1 << 12
	reportLabel = "keymesh attestation v2\x00"
	freshMagic  = "KMFRESH\x01"
	// MaxChallenge is the longest client challenge a node quotes over.
	MaxChallenge = 64
	// DefaultValidity is how long a node's attestation is valid after it
	// is made.
	DefaultValidity = 10 * time.Minute
	// DefaultMaxSkew is how far ahead of the client's clock a document's
	// issue time may be.
	DefaultMaxSkew = 2 * time.Minute
)

// Freshness says when a node made its attestation, until when it is
// valid, and for which client challenge (empty if none was asked for). It
// is covered by the quote's report data with the keys.
type Freshness struct {
	Issued    time.Time
	Expires   time.Time
	Challenge []byte
}

// MarshalBinary encodes f canonically: magic ‖ issued ‖ expires (u64 Unix
// ms each) ‖ challenge (u8 length).
func (f *Freshness) MarshalBinary() ([]byte, error) {
	if len(f.Challenge) > MaxChallenge {
		return nil, fmt.Errorf("attest: challenge of %d bytes, limit %d", len(f.Challenge), MaxChallenge)
	}
	if f.Issued.UnixMilli() < 0 || !f.Expires.After(f.Issued) {
		return nil, errors.New("attest: freshness: expiry must follow the issue time")
	}
	b := []byte(freshMagic)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Issued.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(f.Expires.UnixMilli()))
	b = append(b, byte(len(f.Challenge)))
	return append(b, f.Challenge...), nil
}

// UnmarshalBinary decodes f strictly (errors wrap ErrMalformed).
func (f *Freshness) UnmarshalBinary(data []byte) error {
	n := len(freshMagic) + 17
	if !bytes.HasPrefix(data, []byte(freshMagic)) || len(data) < n || len(data) != n+int(data[n-1]) || int(data[n-1]) > MaxChallenge {
		return fmt.Errorf("%w: not a freshness encoding", ErrMalformed)
	}
	rest := data[len(freshMagic):]
	issued := int64(binary.BigEndian.Uint64(rest))
	expires := int64(binary.BigEndian.Uint64(rest[8:]))
	if issued < 0 || expires <= issued {
		return fmt.Errorf("%w: freshness times", ErrMalformed)
	}
	*f = Freshness{Issued: time.UnixMilli(issued), Expires: time.UnixMilli(expires), Challenge: bytes.Clone(rest[17:])}
	if len(f.Challenge) == 0 {
		f.Challenge = nil
	}
	return nil
}

// MarshalBinary encodes k canonically: magic ‖ kem (u16) ‖ hpke ‖ rsa ‖
// identity, each with a u16 length.
func (k *Keys) MarshalBinary() ([]byte, error) {
	b := []byte(keysMagic)
	b = binary.BigEndian.AppendUint16(b, k.HPKEKEM)
	for _, f := range [][]byte{k.HPKE, k.RSA, k.Identity} {
		if len(f) > maxKeyLen {
			return nil, fmt.Errorf("attest: key of %d bytes, limit %d", len(f), maxKeyLen)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// UnmarshalBinary decodes k strictly (trailing bytes and over-long fields
// are errors wrapping ErrMalformed). It does not validate the keys; Verify
// and the accessor methods do.
func (k *Keys) UnmarshalBinary(data []byte) error {
	if !bytes.HasPrefix(data, []byte(keysMagic)) || len(data) < len(keysMagic)+2 {
		return fmt.Errorf("%w: not a key set", ErrMalformed)
	}
	rest := data[len(keysMagic):]
	var out Keys
	out.HPKEKEM = binary.BigEndian.Uint16(rest)
	rest = rest[2:]
	fields := []*[]byte{&out.HPKE, &out.RSA, &out.Identity}
	for _, f := range fields {
		if len(rest) < 2 {
			return fmt.Errorf("%w: key set truncated", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n > maxKeyLen || len(rest) < n {
			return fmt.Errorf("%w: key of %d bytes", ErrMalformed, n)
		}
		if n > 0 {
			*f = bytes.Clone(rest[:n])
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	*k = out
	return nil
}

// HPKEPublicKey parses the HPKE key for envelope.SealRequest.
func (k *Keys) HPKEPublicKey() (hpke.PublicKey, error) {
	return envelope.ParsePublicKey(k.HPKEKEM, k.HPKE)
}

// RSAPublicKey parses the RSA-3072 key for envelope.SealCompat.
func (k *Keys) RSAPublicKey() (*rsa.PublicKey, error) {
	if len(k.RSA) == 0 {
		return nil, errors.New("attest: node has no RSA key")
	}
	p, err := x509.ParsePKIXPublicKey(k.RSA)
	if err != nil {
		return nil, fmt.Errorf("attest: RSA key: %w", err)
	}
	r, ok := p.(*rsa.PublicKey)
	if !ok || r.N.BitLen() != 3072 {
		return nil, errors.New("attest: not an RSA-3072 key")
	}
	return r, nil
}

// ReportData is the quote report data that binds keys and fresh (the
// canonical encodings of Keys and Freshness).
func ReportData(keys, fresh []byte) enclave.ReportData {
	h := sha512.New()
	h.Write([]byte(reportLabel))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(keys))))
	h.Write(keys)
	h.Write(fresh)
	var rd enclave.ReportData
	h.Sum(rd[:0])
	return rd
}

// Document is the node's attestation: GET /attestation returns it as JSON
// ({"keys": base64, "fresh": base64, "quote": base64}). It is the wire type
// api.AttestationDocument: Keys holds Keys in canonical encoding, Fresh a
// Freshness, Quote an enclave.Quote.
type Document = api.AttestationDocument

// New makes the node's attestation document for keys with backend b, valid
// from fresh.Issued to fresh.Expires and made for fresh.Challenge.
func New(b enclave.Backend, keys Keys, fresh Freshness) (*Document, error) {
	kb, err := keys.MarshalBinary()
	if err != nil {
		return nil, err
	}
	fb, err := fresh.MarshalBinary()
	if err != nil {
		return nil, err
	}
	q, err := b.Quote(ReportData(kb, fb))
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	qb, err := q.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return &Document{Keys: kb, Fresh: fb, Quote: qb}, nil
}

// Policy is what a client accepts. Its trust roots come from the client's
// own configuration, never from the document being verified.
type Policy struct {
	// Measurements pinned in the client config: the node must report one of
	// them. If empty, TrustOnFirstUse decides.
	Measurements []enclave.Measurement
	// TrustOnFirstUse accepts any measurement when none is pinned; the
	// Result says FirstUse, and the caller must warn and pin it.
	TrustOnFirstUse bool
	// AllowSimulated accepts quotes from the sim backend, which prove
	// nothing about hardware. Off by default.
	AllowSimulated bool
	// SimPlatformKeys are the trust roots of the sim backend: a sim quote is
	// accepted only if one of them signed it. A cluster's root is printed by
	// `keymesh cluster init` and written to SimPlatformKeyFile in its
	// directory. Required to accept any sim quote (ErrNoRoot without it).
	SimPlatformKeys []ed25519.PublicKey
	// MinKEM is the weakest HPKE KEM accepted for the node's request key:
	// envelope.KEMXWing (also the meaning of 0, the default) or
	// envelope.KEMX25519, which accepts X25519 as well. A document offering
	// a weaker KEM is refused (ErrWeakKEM).
	MinKEM uint16
	// NodeIdentity, if set, is the Ed25519 identity key of the node the
	// client means to talk to (the cluster config's identity_key): a
	// document attesting another identity is refused (ErrWrongNode).
	NodeIdentity ed25519.PublicKey
	// Challenge, if set, is the challenge the client sent with its request
	// for the document: the document must be made for it (ErrChallenge).
	Challenge []byte
	// Now is the verification time (time.Now if zero): a document is
	// refused once it expired, or when issued more than MaxSkew after Now
	// (ErrStale).
	Now time.Time
	// MaxAge bounds how old a document may be, whatever expiry the node
	// gave it (DefaultValidity if zero).
	MaxAge time.Duration
	// MaxSkew is how far ahead of Now a document's issue time may be
	// (DefaultMaxSkew if zero).
	MaxSkew time.Duration
	// NitroRoots, SEVSNPRoots and TDXRoots replace the vendor roots pinned
	// in packages attest/nitro (AWS Nitro Enclaves root G1), attest/sevsnp
	// (AMD's ARK and ASK per product line) and attest/tdx (Intel SGX Root
	// CA). Nil means the pinned vendor roots, which is what clients use;
	// only tests, with chains they generate, set them. A hardware quote's
	// certificates are checked at Now.
	NitroRoots  *x509.CertPool
	SEVSNPRoots sevsnp.TrustedRoots
	TDXRoots    *x509.CertPool
}

// SimPlatformKeyFile is the file, in the directory `keymesh cluster init`
// writes, holding the cluster's sim platform key (hex, one line): the root
// that clients pin (Policy.SimPlatformKeys).
const SimPlatformKeyFile = "sim-platform-key"

// ParseSimPlatformKey decodes a sim platform key as printed by cluster init
// (64 hex digits).
func ParseSimPlatformKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if len(s) != 2*ed25519.PublicKeySize {
		return nil, fmt.Errorf("attest: sim platform key must be %d hex digits, got %d", 2*ed25519.PublicKeySize, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("attest: sim platform key: %w", err)
	}
	return ed25519.PublicKey(b), nil
}

// kemStrength orders the allowed KEMs: X25519 < X-Wing (post-quantum
// hybrid). An unknown KEM has strength 0.
func kemStrength(id uint16) int {
	switch id {
	case envelope.KEMX25519:
		return 1
	case envelope.KEMXWing:
		return 2
	}
	return 0
}

// Result is a verified attestation.
type Result struct {
	Keys        Keys
	Fresh       Freshness // when the document was made, its expiry, its challenge
	Platform    string
	Measurement enclave.Measurement
	Simulated   bool
	FirstUse    bool     // accepted by trust on first use: warn, then pin Measurement
	Warnings    []string // for the user: simulated platform, first use
}

var (
	// ErrMalformed: the document does not decode.
	ErrMalformed = errors.New("attest: malformed document")
	// ErrQuote: the quote's evidence does not verify.
	ErrQuote = errors.New("attest: quote does not verify")
	// ErrSimulated: the quote is simulated and the policy does not allow it.
	ErrSimulated = errors.New("attest: node runs a simulated enclave and simulated quotes are not allowed")
	// ErrUnsupportedPlatform: no verifier for the quote's platform yet.
	ErrUnsupportedPlatform = errors.New("attest: unsupported platform")
	// ErrKeysNotBound: the quote's report data does not cover the keys.
	ErrKeysNotBound = errors.New("attest: quote does not cover the node's keys")
	// ErrNoPin: no measurement pinned and trust on first use is off.
	ErrNoPin = errors.New("attest: no measurement pinned (set one, or allow trust on first use)")
	// ErrNoRoot: a sim quote, and no sim platform key in the policy to
	// verify it against.
	ErrNoRoot = errors.New("attest: no sim platform key pinned, so the node's simulated quote cannot be verified " +
		"(anyone can sign a sim quote with a key of their own): give the cluster's platform key, which `keymesh cluster init` prints and writes to " +
		SimPlatformKeyFile + " in the cluster directory (keymesh dev: in its --dir) — " +
		"--platform-key HEX or the credentials file's platformKeys for the CLI, Attestation.SimPlatformKeys in the Go SDK")
	// ErrStale: the document expired, is older than the policy's MaxAge,
	// or was issued in the client's future (a replayed or pre-made
	// attestation).
	ErrStale = errors.New("attest: the attestation is not fresh (expired, too old, or issued in the future)")
	// ErrChallenge: the document was not made for the client's challenge
	// (a replayed attestation).
	ErrChallenge = errors.New("attest: the attestation was not made for this client's challenge")
	// ErrWrongNode: the document attests another node's identity key than
	// the one the client expects.
	ErrWrongNode = errors.New("attest: the attestation is from another node than the one expected")
	// ErrWeakKEM: the document offers a request key with a weaker KEM than
	// the policy's minimum.
	ErrWeakKEM = errors.New("attest: the node's request key uses a weaker KEM than the client requires")
)

// MeasurementError says the node runs other code than the client pinned.
type MeasurementError struct {
	Got    enclave.Measurement
	Pinned []enclave.Measurement
}

func (e *MeasurementError) Error() string {
	p := make([]string, len(e.Pinned))
	for i, m := range e.Pinned {
		p[i] = m.String()
	}
	return fmt.Sprintf("attest: node reports measurement %s, but the pinned measurement is %s", e.Got, strings.Join(p, " or "))
}

// Verify checks doc against p: the quote's platform evidence against the
// policy's roots (ErrNoRoot for a sim quote without SimPlatformKeys; ErrQuote
// for evidence that does not verify under them), the platform policy, the
// measurement, that the quote covers the keys and the freshness
// (ErrKeysNotBound), the freshness itself (ErrStale, ErrChallenge), the
// node's identity (ErrWrongNode) and the request key's KEM (ErrWeakKEM).
// Only then may the caller seal to Result.Keys, until Result.Fresh.Expires.
func Verify(doc *Document, p Policy) (*Result, error) {
	var q enclave.Quote
	if err := q.UnmarshalBinary(doc.Quote); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var keys Keys
	if err := keys.UnmarshalBinary(doc.Keys); err != nil {
		return nil, err
	}
	var fresh Freshness
	if err := fresh.UnmarshalBinary(doc.Fresh); err != nil {
		return nil, err
	}
	res := &Result{Platform: q.Platform, Measurement: q.Measurement, Simulated: q.Simulated, Fresh: fresh}
	if err := verifyQuote(&q, p, res); err != nil {
		return nil, err
	}
	if want := ReportData(doc.Keys, doc.Fresh); subtle.ConstantTimeCompare(want[:], q.ReportData[:]) != 1 {
		return nil, ErrKeysNotBound
	}
	if err := checkFresh(&fresh, p); err != nil {
		return nil, err
	}
	if p.NodeIdentity != nil && subtle.ConstantTimeCompare(p.NodeIdentity, keys.Identity) != 1 {
		return nil, fmt.Errorf("%w: it attests identity %x…, the client expects %x…", ErrWrongNode, prefix(keys.Identity), prefix(p.NodeIdentity))
	}
	if _, err := keys.HPKEPublicKey(); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	minKEM := p.MinKEM
	if minKEM == 0 {
		minKEM = envelope.KEMXWing
	}
	if kemStrength(minKEM) == 0 {
		return nil, fmt.Errorf("attest: policy minimum KEM %#04x is not a KEM keymesh uses", minKEM)
	}
	if kemStrength(keys.HPKEKEM) < kemStrength(minKEM) {
		return nil, fmt.Errorf("%w: the document offers KEM %#04x, the minimum is %#04x (X-Wing, the default)", ErrWeakKEM, keys.HPKEKEM, minKEM)
	}
	res.Keys = keys
	return res, nil
}

func prefix(b []byte) []byte { return b[:min(len(b), 8)] }

// checkFresh applies p's freshness rules to f.
func checkFresh(f *Freshness, p Policy) error {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxAge, skew := p.MaxAge, p.MaxSkew
	if maxAge <= 0 {
		maxAge = DefaultValidity
	}
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case !now.Before(f.Expires):
		return fmt.Errorf("%w: it expired at %s, now %s", ErrStale, stamp(f.Expires), stamp(now))
	case now.Sub(f.Issued) > maxAge:
		return fmt.Errorf("%w: issued at %s, more than %v before now (%s)", ErrStale, stamp(f.Issued), maxAge, stamp(now))
	case f.Issued.After(now.Add(skew)):
		return fmt.Errorf("%w: issued at %s, after now (%s)", ErrStale, stamp(f.Issued), stamp(now))
	}
	if p.Challenge != nil && subtle.ConstantTimeCompare(p.Challenge, f.Challenge) != 1 {
		return ErrChallenge
	}
	return nil
}

func verifyQuote(q *enclave.Quote, p Policy, res *Result) error {
	if q.Simulated && !p.AllowSimulated {
		return ErrSimulated
	}
	switch q.Platform {
	case enclave.PlatformSim:
		if len(p.SimPlatformKeys) == 0 {
			return ErrNoRoot
		}
		if err := sim.VerifyQuote(q, p.SimPlatformKeys); err != nil {
			return fmt.Errorf("%w: %w", ErrQuote, err)
		}
		res.Warnings = append(res.Warnings, "the node runs the simulated enclave backend: its quote proves nothing about the hardware")
	case enclave.PlatformNitro, enclave.PlatformSEVSNP, enclave.PlatformTDX:
		if err := verifyHardware(q, p); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %q", ErrUnsupportedPlatform, q.Platform)
	}
	switch {
	case len(p.Measurements) > 0:
		for _, m := range p.Measurements {
			if m.Equal(q.Measurement) {
				return nil
			}
		}
		return &MeasurementError{Got: q.Measurement, Pinned: p.Measurements}
	case p.TrustOnFirstUse:
		res.FirstUse = true
		res.Warnings = append(res.Warnings, fmt.Sprintf("trusting measurement %s on first use: pin it to detect a changed node binary", q.Measurement))
		return nil
	}
	return ErrNoPin
}

// QuoteVerifier returns an enclave.Verifier applying p to a bare quote (no
// key binding), for enclave.ExportMigration and MigrationTarget.Import: pin
// the other build's measurement in p.Measurements.
func QuoteVerifier(p Policy) enclave.Verifier {
	return func(q *enclave.Quote) error {
		return verifyQuote(q, p, &Result{})
	}
}
