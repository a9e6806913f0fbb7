// Package nitrotest makes Nitro-shaped attestation documents signed by a
// certificate chain it generates itself, for tests that need a document
// binding data of their choosing (no genuine AWS document can). Nothing it
// makes chains to the AWS root; a verifier accepts its documents only when
// a test hands it CA.Roots. Never import it outside tests.
package nitrotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CA is a generated root and signing certificate, valid from NotBefore to
// NotAfter.
type CA struct {
	Root, Leaf          *x509.Certificate
	leafKey             *ecdsa.PrivateKey
	NotBefore, NotAfter time.Time
}

// NewCA generates a root and a signing certificate valid for a day from
// notBefore.
func NewCA(notBefore time.Time) (*CA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notAfter := notBefore.Add(24 * time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nitrotest root (generated, not AWS)"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nitrotest enclave (generated)"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return &CA{Root: root, Leaf: leaf, leafKey: leafKey, NotBefore: notBefore, NotAfter: notAfter}, nil
}

// Roots is a pool holding only the generated root.
func (ca *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// Sign makes a document with PCR0 pcr0 (48 bytes), user_data userData and
// timestamp at, signed by the generated signing certificate.
func (ca *CA) Sign(pcr0, userData []byte, at time.Time) ([]byte, error) {
	pcrs := map[uint][]byte{0: pcr0, 1: make([]byte, 48), 2: make([]byte, 48)}
	payload, err := cbor.Marshal(map[string]any{
		"module_id":   "i-0000000000000000-enc0000000000000000",
		"digest":      "SHA384",
		"timestamp":   uint64(at.UnixMilli()),
		"pcrs":        pcrs,
		"certificate": ca.Leaf.Raw,
		"cabundle":    [][]byte{ca.Root.Raw},
		"public_key":  nil,
		"user_data":   userData,
		"nonce":       nil,
	})
	if err != nil {
		return nil, err
	}
	protected, _ := cbor.Marshal(map[int]int{1: -35})
	tbs, _ := cbor.Marshal([]any{"Signature1", protected, []byte{}, payload})
	d := sha512.Sum384(tbs)
	r, s, err := ecdsa.Sign(rand.Reader, ca.leafKey, d[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return cbor.Marshal([]any{protected, map[any]any{}, payload, sig})
}
