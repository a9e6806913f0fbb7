package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/keymesh/keymesh/internal/config"
)

// alpn names the protocol on the TLS connection, so that a keymesh peer
// link cannot be confused with another TLS service on the same port.
const alpn = "keymesh-peer/1"

// selfSignedCert makes the certificate a node presents: self-signed by its
// identity key. Nothing in it but the key matters: peers pin the key
// (RFC 8446 §4.4.2–4.4.3: the CertificateVerify message proves possession
// of the private key of the leaf certificate's public key).
//
// The certificate also carries the node's cluster policy digest
// (config.PolicyDigest) as a URI subject alternative name,
// "keymesh-policy:<hex>" (RFC 5280 §4.2.1.6): signed by the identity key
// it is bound to the key the peer pins, and both sides read the other's
// in the handshake, with no frame of its own (policy.go). A nil policy
// leaves it out, as builds before the digest did (tests play those).
func selfSignedCert(id *config.Identity, policy *config.PolicyDigest) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "keymesh node " + id.PublicKeyString()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if policy != nil {
		tmpl.URIs = []*url.URL{{Scheme: policyURIScheme, Opaque: policy.String()}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.PublicKey(), id)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id, Leaf: leaf}, nil
}

// peerKey returns the Ed25519 key of the single certificate the peer
// presented. Chains and expiry are ignored on purpose: there is no CA, the
// key is pinned.
func peerKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if cs.Version != tls.VersionTLS13 {
		return nil, errors.New("transport: peer did not negotiate TLS 1.3")
	}
	if len(cs.PeerCertificates) != 1 {
		return nil, fmt.Errorf("transport: peer presented %d certificates, want 1", len(cs.PeerCertificates))
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("transport: peer certificate holds a %T, want an Ed25519 key", cs.PeerCertificates[0].PublicKey)
	}
	return pub, nil
}

// serverConfig accepts a client whose key is one of the configured peers'.
func (t *Transport) serverConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{alpn},
		VerifyConnection: func(cs tls.ConnectionState) error {
			pub, err := peerKey(cs)
			if err != nil {
				return err
			}
			if _, ok := t.byKey[string(pub)]; !ok {
				return fmt.Errorf("transport: key %s is not a configured peer", config.EncodePublicKey(pub))
			}
			return nil
		},
	}
}

// clientConfig accepts a server only if it holds want, the key configured
// for the peer we dial.
func clientConfig(cert tls.Certificate, peer uint16, want ed25519.PublicKey) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpn},
		ServerName:   fmt.Sprintf("keymesh-node-%d", peer),
		// No CA: the standard chain check is replaced by pinning the key
		// in VerifyConnection, which runs whatever InsecureSkipVerify says.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			pub, err := peerKey(cs)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare(pub, want) != 1 {
				return fmt.Errorf("transport: %s presented key %s, not its configured key %s", fmt.Sprintf("peer %d", peer), config.EncodePublicKey(pub), config.EncodePublicKey(want))
			}
			return nil
		},
	}
}
