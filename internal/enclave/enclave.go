// Package enclave defines what a keymesh node needs from a trusted execution
// environment (TEE) and the wire formats shared by every backend: the
// measurement of the running code, attestation quotes over 64 bytes of
// caller-chosen report data, sealing of secrets at rest to the measurement,
// key generation inside the backend, and the migration protocol that moves
// sealed secrets from one build to the next.
//
// The operations follow the common shape of the hardware interfaces:
//   - Measurement: SEV-SNP ATTESTATION_REPORT.MEASUREMENT (SNP ABI spec §7.3,
//     Table 21), TDX TDREPORT MRTD/RTMR, SGX MRENCLAVE, Nitro PCR0. The sim
//     backend uses SHA-256 of the running executable.
//   - Quote: a signed report that carries the measurement and 64 bytes of
//     REPORT_DATA (SNP MSG_REPORT_REQ, TDX TDG.MR.REPORT + quoting enclave,
//     SGX EREPORT + QE, Nitro NSM Attestation with user_data).
//   - Seal/Unseal: authenticated encryption under a key that only code with the
//     same measurement can derive (SNP MSG_KEY_REQ with GUEST_FIELD_SELECT
//     measurement, SGX EGETKEY with KEYPOLICY.MRENCLAVE; TDX and Nitro have no
//     sealing instruction and use a key-release service gated on the quote).
//
// docs/enclave.md describes each backend mapping and the upgrade path.
//
// Library code here does no logging; the sim backend is in package
// enclave/sim.
package enclave

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// Measurement identifies the code running in the enclave: SHA-256 of the
// executable in the sim backend, the launch digest on real hardware (padded or
// hashed to 32 bytes by the backend; see docs/enclave.md). It is public.
type Measurement [32]byte

// String returns the measurement in lower-case hex.
func (m Measurement) String() string { return hex.EncodeToString(m[:]) }

// Equal reports whether m and o are the same measurement, in constant time.
func (m Measurement) Equal(o Measurement) bool {
	return subtle.ConstantTimeCompare(m[:], o[:]) == 1
}

// ParseMeasurement decodes a 64-character hex measurement.
func ParseMeasurement(s string) (Measurement, error) {
	var m Measurement
	if len(s) != 2*len(m) {
		return m, fmt.Errorf("enclave: measurement must be %d hex characters, got %d", 2*len(m), len(s))
	}
	if _, err := hex.Decode(m[:], []byte(s)); err != nil {
		return m, fmt.Errorf("enclave: measurement: %w", err)
	}
	return m, nil
}

// ReportData is the caller-chosen data a quote commits to; 64 bytes as in
// SEV-SNP REPORT_DATA, TDX REPORTDATA and SGX REPORTDATA. Callers put a hash
// of the public keys they want bound to the quote here.
type ReportData [64]byte

// Backend is a trusted execution environment. Implementations must be safe for
// concurrent use.
//
// Contract: Seal output can be opened by Unseal with the same label on a
// backend of the same platform instance with the same Measurement, and by no
// other. Quote never reveals secrets. GenerateKey creates the private key with
// the backend's randomness and returns it only sealed (and in memory, parsed).
type Backend interface {
	// Platform names the backend: "sim", "sev-snp", "tdx", "sgx", "nitro".
	Platform() string
	// Simulated reports whether the backend is a software simulation, whose
	// quotes prove nothing about the hardware.
	Simulated() bool
	// Measurement is the measurement of the running code.
	Measurement() Measurement
	// Quote returns an attestation document over reportData.
	Quote(reportData ReportData) (*Quote, error)
	// Seal encrypts plaintext to this measurement. label names the secret's
	// purpose ("node identity", "share/<wallet>") and must be given again to
	// Unseal; a blob sealed under one label does not open under another.
	Seal(plaintext []byte, label string) ([]byte, error)
	// Unseal opens a blob made by Seal. A blob sealed by another measurement
	// fails with a *MeasurementError; any other failure wraps ErrUnseal.
	Unseal(sealed []byte, label string) ([]byte, error)
	// GenerateKey creates a private key of the given kind inside the backend
	// and returns it with its sealed encoding (store the latter; reload it with
	// OpenKey).
	GenerateKey(kind KeyKind, label string) (*Key, []byte, error)
}

var (
	// ErrUnseal is wrapped by every Unseal failure other than a measurement
	// mismatch: a blob that is corrupt, tampered with, sealed under another
	// label, or by another platform instance.
	ErrUnseal = errors.New("enclave: cannot unseal")
	// ErrMalformed is wrapped by decoding errors of the wire formats here.
	ErrMalformed = errors.New("enclave: malformed encoding")
)

// MeasurementError says that a secret was sealed by different code than the
// code now running: the node binary changed. The node must refuse to start and
// tell the operator to migrate secrets with the old binary (docs/enclave.md).
type MeasurementError struct {
	SealedTo Measurement // the measurement the blob was sealed to
	Running  Measurement // this backend's measurement
}

func (e *MeasurementError) Error() string {
	return fmt.Sprintf("enclave: secret was sealed by a build with measurement %s but this build's measurement is %s; "+
		"the binary changed: run the migration from the old binary (see docs/enclave.md)", e.SealedTo, e.Running)
}

// OpenKey unseals a key produced by b.GenerateKey (or sealed with SealKey)
// under label.
func OpenKey(b Backend, sealed []byte, label string) (*Key, error) {
	raw, err := b.Unseal(sealed, label)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return ParseKey(raw)
}

// SealKey seals k under label with b.
func SealKey(b Backend, k *Key, label string) ([]byte, error) {
	raw := k.marshal()
	defer clear(raw)
	return b.Seal(raw, label)
}

// LoadOrCreateKey returns the node's key named label: it unseals the blob
// that load returns, or, when load returns nil (no key stored yet), generates
// one inside b and passes its sealed form to save. Errors from Unseal are
// returned as they are: a *MeasurementError means the binary changed and the
// node must refuse to start with that error's message.
func LoadOrCreateKey(b Backend, kind KeyKind, label string, load func() ([]byte, error), save func([]byte) error) (*Key, error) {
	sealed, err := load()
	if err != nil {
		return nil, fmt.Errorf("enclave: loading %s: %w", label, err)
	}
	if sealed != nil {
		k, err := OpenKey(b, sealed, label)
		if err != nil {
			return nil, err
		}
		if k.Kind() != kind {
			return nil, fmt.Errorf("enclave: %s is a %v key, want %v", label, k.Kind(), kind)
		}
		return k, nil
	}
	k, sealed, err := b.GenerateKey(kind, label)
	if err != nil {
		return nil, err
	}
	if err := save(sealed); err != nil {
		return nil, fmt.Errorf("enclave: saving %s: %w", label, err)
	}
	return k, nil
}

// Seal labels for the node's secrets at rest (docs/enclave.md).
const (
	LabelIdentity = "node/identity" // Ed25519 node identity key
	LabelHPKE     = "envelope/hpke" // HPKE X-Wing request key
	LabelRSA      = "envelope/rsa"  // RSA-3072 compatibility-mode key
)

// LabelShare is the seal label of the DKLs23 share record of a wallet.
func LabelShare(wallet string) string { return "share/" + wallet }
