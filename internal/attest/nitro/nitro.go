// Package nitro verifies AWS Nitro Enclaves attestation documents on the
// client: that AWS's Nitro hypervisor signed the document, and what it says
// about the enclave (its PCRs) and the data the enclave asked it to cover
// (user_data, nonce, public_key). It does no I/O and never logs.
//
// The document is the one the Nitro Secure Module (NSM) returns to an
// enclave's Attestation request, as specified by AWS in
// aws-nitro-enclaves-nsm-api docs/attestation_process.md ("Attestation
// document specification" and "Attestation document validation") and the
// Nitro Enclaves User Guide, "Verifying the root of trust":
//
//   - It is a COSE_Sign1 message (RFC 9052 §4.2), untagged: the CBOR array
//     [protected: bstr, unprotected: map, payload: bstr, signature: bstr].
//     The protected header is the map {1 (alg): -35 (ES384)}.
//   - The signature is ECDSA P-384 with SHA-384 (RFC 9053 §2.1: r ‖ s, 48
//     bytes each) over the Sig_structure ["Signature1", protected, h” (no
//     external AAD), payload] (RFC 9052 §4.4), by the key of the payload's
//     certificate.
//   - The payload is a CBOR map with module_id (text), digest ("SHA384"),
//     timestamp (ms since the Unix epoch), pcrs (index 0..31 → 32, 48 or 64
//     bytes), certificate (DER), cabundle (DER, the root first), and the
//     optional public_key, user_data and nonce (bytes or null, ≤ 1024 B).
//   - certificate must chain through cabundle to the AWS Nitro Enclaves root
//     G1, pinned here (AWSRootG1), at the verification time.
//
// What a caller then trusts: PCR0 is the SHA-384 digest of the enclave image
// file (EIF), so it names the code; user_data is what the enclave chose, so
// a node puts the 64 bytes that bind its keys there. A document from an
// enclave started in debug mode has all-zero PCRs and proves nothing (the
// parent instance can read its memory): Verify refuses it.
package nitro

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// awsRootG1PEM is the AWS Nitro Enclaves root certificate G1, from
// https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip
// (linked from the Nitro Enclaves User Guide, "Verifying the root of
// trust"). AWS publishes its SHA-256 fingerprint, AWSRootG1SHA256; the test
// checks the file against it. Valid 2019-10-28 to 2049-10-28.
//
//go:embed aws_nitro_enclaves_root_g1.pem
var awsRootG1PEM []byte

// AWSRootG1SHA256 is the SHA-256 fingerprint of the DER of the AWS Nitro
// Enclaves root G1, as AWS publishes it.
const AWSRootG1SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// AWSRootG1 returns the pinned AWS Nitro Enclaves root G1.
func AWSRootG1() *x509.Certificate {
	b, _ := pem.Decode(awsRootG1PEM)
	if b == nil {
		panic("nitro: embedded AWS root is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("nitro: embedded AWS root: " + err.Error())
	}
	return c
}

// Roots returns a pool holding only the pinned AWS Nitro Enclaves root G1.
func Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(AWSRootG1())
	return p
}

// Limits from the specification's field rules.
const (
	maxDocument = 1 << 15 // a document with its chain is ~5 KiB
	maxUserData = 1024    // user_data, nonce and public_key: at most 1024 bytes
	maxCABundle = 8
	maxPCRs     = 32
)

var (
	// ErrMalformed: the document does not decode, or a field breaks the
	// specification's rules.
	ErrMalformed = errors.New("nitro: malformed attestation document")
	// ErrChain: the signing certificate does not chain to the trusted root
	// at the verification time.
	ErrChain = errors.New("nitro: certificate chain does not verify")
	// ErrSignature: the COSE signature does not verify under the signing
	// certificate's key.
	ErrSignature = errors.New("nitro: signature does not verify")
	// ErrDebug: the enclave runs in debug mode (all-zero PCRs).
	ErrDebug = errors.New("nitro: the enclave runs in debug mode (all-zero PCR0), its memory is readable by the parent instance")
)

// Document is a verified attestation document.
type Document struct {
	ModuleID    string
	Timestamp   time.Time
	PCRs        map[uint][]byte // index → SHA-384 digest (48 bytes)
	PublicKey   []byte          // nil if absent
	UserData    []byte          // nil if absent
	Nonce       []byte          // nil if absent
	Certificate *x509.Certificate
}

// PCR0 is the digest of the enclave image file: the measurement of the code.
func (d *Document) PCR0() []byte { return d.PCRs[0] }

// Measurement is the 32-byte measurement keymesh pins for a Nitro enclave:
// SHA-256 of PCR0 (docs/enclave.md, "Mapping to real TEEs").
func (d *Document) Measurement() [32]byte { return MeasurementOf(d.PCR0()) }

// MeasurementOf returns keymesh's 32-byte measurement for the PCR0 of an
// enclave image (as `nitro-cli build-enclave` prints it).
func MeasurementOf(pcr0 []byte) [32]byte { return sha256.Sum256(pcr0) }

// coseSign1 is the COSE_Sign1 array (RFC 9052 §4.2).
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// payload is the attestation document (attestation_process.md §2).
type payload struct {
	ModuleID    string          `cbor:"module_id"`
	Digest      string          `cbor:"digest"`
	Timestamp   uint64          `cbor:"timestamp"`
	PCRs        map[uint][]byte `cbor:"pcrs"`
	Certificate []byte          `cbor:"certificate"`
	CABundle    [][]byte        `cbor:"cabundle"`
	PublicKey   []byte          `cbor:"public_key"`
	UserData    []byte          `cbor:"user_data"`
	Nonce       []byte          `cbor:"nonce"`
}

var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  64,
		MaxMapPairs:       64,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// parsed is a decoded, not yet verified, document.
type parsed struct {
	msg coseSign1
	doc payload
}

// parse decodes raw strictly: the COSE_Sign1 structure, the protected
// header (ES384 and nothing else) and the payload's mandatory fields and
// sizes. It verifies nothing cryptographic.
func parse(raw []byte) (*parsed, error) {
	if len(raw) > maxDocument {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(raw), maxDocument)
	}
	var p parsed
	if err := decMode.Unmarshal(raw, &p.msg); err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %w", ErrMalformed, err)
	}
	var hdr map[int]int
	if err := decMode.Unmarshal(p.msg.Protected, &hdr); err != nil || len(hdr) != 1 || hdr[1] != -35 {
		return nil, fmt.Errorf("%w: protected header must be {alg: ES384}", ErrMalformed)
	}
	var unprot map[any]any
	if err := decMode.Unmarshal(p.msg.Unprotected, &unprot); err != nil {
		return nil, fmt.Errorf("%w: unprotected header: %w", ErrMalformed, err)
	}
	if len(p.msg.Signature) != 96 {
		return nil, fmt.Errorf("%w: ES384 signature of %d bytes", ErrMalformed, len(p.msg.Signature))
	}
	if err := decMode.Unmarshal(p.msg.Payload, &p.doc); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	d := &p.doc
	switch {
	case d.ModuleID == "":
		return nil, fmt.Errorf("%w: no module_id", ErrMalformed)
	case d.Digest != "SHA384":
		return nil, fmt.Errorf("%w: digest %q, want SHA384", ErrMalformed, d.Digest)
	case d.Timestamp == 0 || d.Timestamp > 1<<53:
		return nil, fmt.Errorf("%w: timestamp", ErrMalformed)
	case len(d.PCRs) == 0 || len(d.PCRs) > maxPCRs:
		return nil, fmt.Errorf("%w: %d PCRs", ErrMalformed, len(d.PCRs))
	case len(d.Certificate) == 0:
		return nil, fmt.Errorf("%w: no certificate", ErrMalformed)
	case len(d.CABundle) == 0 || len(d.CABundle) > maxCABundle:
		return nil, fmt.Errorf("%w: cabundle of %d certificates", ErrMalformed, len(d.CABundle))
	case len(d.PublicKey) > maxUserData || len(d.UserData) > maxUserData || len(d.Nonce) > maxUserData:
		return nil, fmt.Errorf("%w: public_key, user_data or nonce over %d bytes", ErrMalformed, maxUserData)
	}
	for i, v := range d.PCRs {
		if i >= maxPCRs || len(v) != sha512.Size384 {
			return nil, fmt.Errorf("%w: PCR%d of %d bytes (SHA384 digests are 48)", ErrMalformed, i, len(v))
		}
	}
	if _, ok := d.PCRs[0]; !ok {
		return nil, fmt.Errorf("%w: no PCR0", ErrMalformed)
	}
	return &p, nil
}

// Parse decodes a document without verifying it (for tools that show one).
// Never trust its fields; use Verify.
func Parse(raw []byte) (*Document, error) {
	p, err := parse(raw)
	if err != nil {
		return nil, err
	}
	return p.document(nil), nil
}

func (p *parsed) document(cert *x509.Certificate) *Document {
	d := &p.doc
	return &Document{
		ModuleID:    d.ModuleID,
		Timestamp:   time.UnixMilli(int64(d.Timestamp)).UTC(),
		PCRs:        d.PCRs,
		PublicKey:   d.PublicKey,
		UserData:    d.UserData,
		Nonce:       d.Nonce,
		Certificate: cert,
	}
}

// Verify checks raw at time now against roots (Roots() for AWS; a caller
// passes another pool only in tests): the document decodes strictly, its
// certificate chains through its cabundle to one of roots and every
// certificate is valid at now, the ES384 signature over the Sig_structure
// verifies under the certificate's key, and PCR0 is not all zeros (debug
// mode). Only then does it return the document's fields.
func Verify(raw []byte, roots *x509.CertPool, now time.Time) (*Document, error) {
	if roots == nil {
		return nil, errors.New("nitro: no trusted roots given")
	}
	p, err := parse(raw)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(p.doc.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrMalformed, err)
	}
	inter := x509.NewCertPool()
	// cabundle[0] is the root: it must be one of roots, which
	// x509.Verify checks by chaining to roots, never to a certificate of
	// the document. The others are intermediates.
	for i, der := range p.doc.CABundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: cabundle[%d]: %w", ErrMalformed, i, err)
		}
		if i > 0 {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChain, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().BitSize != 384 {
		return nil, fmt.Errorf("%w: the signing certificate's key is not ECDSA P-384", ErrSignature)
	}
	// Sig_structure (RFC 9052 §4.4) for a COSE_Sign1 without external AAD.
	tbs, err := cbor.Marshal([]any{"Signature1", p.msg.Protected, []byte{}, p.msg.Payload})
	if err != nil {
		return nil, fmt.Errorf("nitro: Sig_structure: %w", err)
	}
	digest := sha512.Sum384(tbs)
	r := new(big.Int).SetBytes(p.msg.Signature[:48])
	s := new(big.Int).SetBytes(p.msg.Signature[48:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return nil, ErrSignature
	}
	if bytes.Equal(p.doc.PCRs[0], make([]byte, sha512.Size384)) {
		return nil, ErrDebug
	}
	return p.document(leaf), nil
}
