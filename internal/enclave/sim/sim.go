// Package sim is the software enclave backend. It does every operation of
// enclave.Backend without hardware, and says so: every quote has
// Simulated set, and clients refuse simulated quotes unless configured to
// accept them.
//
//   - Measurement: SHA-256 of the running executable (os.Executable), so a
//     reproducible build (enclave.BuildMeasurement) predicts it.
//   - Quote: an Ed25519 signature by a platform key kept in the data
//     directory, standing in for the chip's attestation key (SEV-SNP VCEK).
//   - Seal: AES-256-GCM under HKDF-SHA256 (RFC 5869) of a platform secret kept
//     in the data directory, salted with the measurement and labelled with the
//     caller's label, standing in for SNP MSG_KEY_REQ / SGX EGETKEY: a binary
//     with another measurement derives another key and cannot unseal.
//
// The sim protects against a changed binary, not against someone who can
// read the data directory: the platform file is the "hardware" here.
package sim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keymesh/keymesh/internal/enclave"
)

const (
	platformFile  = "platform"
	platformMagic = "KMSIMPLATFORM\x01"
	quoteDomain   = "keymesh sim quote v1\x00"
	sealDomain    = "keymesh sim seal v1\x00"
	evidenceLen   = ed25519.PublicKeySize + ed25519.SignatureSize
	gcmNonceLen   = 12
)

// Config configures Open.
type Config struct {
	// Dir holds the simulated platform secrets (file "platform", mode 0600).
	// It is created if missing. Use a directory under the node's data dir,
	// e.g. <data>/enclave-sim.
	Dir string
	// Executable is the file measured; os.Executable() if empty. Tests set
	// it; a node never should.
	Executable string
	// Rand is the randomness for nonces and keys; crypto/rand if nil.
	Rand io.Reader
}

// Backend is the sim enclave backend. It is safe for concurrent use.
type Backend struct {
	measurement enclave.Measurement
	rand        io.Reader
	// Behind a closure: fmt prints a func as an address whatever the verb.
	secrets func() *secrets
}

type secrets struct {
	signKey    ed25519.PrivateKey
	sealSecret []byte
}

// Format prints the platform and measurement only.
func (b *Backend) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "sim.Backend(measurement %s)", b.measurement)
}

var _ enclave.Backend = (*Backend)(nil)

// Open loads the simulated platform from c.Dir, creating it on first use, and
// measures the executable.
func Open(c Config) (*Backend, error) {
	if c.Dir == "" {
		return nil, errors.New("sim: no platform directory")
	}
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	exe := c.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("sim: finding executable: %w", err)
		}
	}
	m, err := enclave.MeasureFile(exe)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	seed, secret, err := loadPlatform(c.Dir, r)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return &Backend{
		measurement: m,
		rand:        r,
		secrets:     hide(&secrets{signKey: ed25519.NewKeyFromSeed(seed), sealSecret: secret}),
	}, nil
}

// loadPlatform reads Dir/platform, or creates it atomically if absent:
// magic ‖ Ed25519 seed (32) ‖ seal secret (32).
func loadPlatform(dir string, r io.Reader) (seed, secret []byte, err error) {
	path := filepath.Join(dir, platformFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("sim: %w", err)
		}
		fresh := make([]byte, len(platformMagic)+64)
		copy(fresh, platformMagic)
		if _, err := io.ReadFull(r, fresh[len(platformMagic):]); err != nil {
			return nil, nil, fmt.Errorf("sim: platform secret: %w", err)
		}
		if err := writeExclusive(dir, path, fresh); err != nil {
			clear(fresh)
			return nil, nil, err
		}
		clear(fresh)
		b, err = os.ReadFile(path) // another process may have won the race
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sim: reading platform: %w", err)
	}
	defer clear(b)
	return parsePlatform(path, b)
}

// writeExclusive writes data to path only if path does not exist, without
// ever exposing a partial file.
func writeExclusive(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".platform-*")
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("sim: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sim: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// DirName is the directory, inside a node's data dir, that holds its
// simulated platform.
const DirName = "enclave-sim"

// ProvisionCluster makes the platforms in dirs (one per node, each a
// node's DirName) platforms of one cluster, and returns the cluster's
// platform key: every node signs its quotes with the same key, so that the
// cluster's clients pin a single root, the way one vendor root stands behind
// every chip. Each node keeps its own seal secret: an existing platform file
// keeps its seal secret (secrets sealed with it still open), a new one gets a
// fresh one. With keep, the key of the first dir that already has a platform
// is kept (a re-run of cluster init keeps the cluster's root); otherwise the
// key is fresh. r is the randomness (crypto/rand if nil). Files are replaced
// atomically; the key's secret half never leaves this package.
func ProvisionCluster(dirs []string, keep bool, r io.Reader) (ed25519.PublicKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var seed []byte
	if keep {
		for _, d := range dirs {
			s, secret, err := loadExisting(filepath.Join(d, platformFile))
			clear(secret)
			if err == nil {
				seed = s
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
	}
	if seed == nil {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(r, seed); err != nil {
			return nil, fmt.Errorf("sim: platform key: %w", err)
		}
	}
	defer clear(seed)
	for _, d := range dirs {
		if err := provision(d, seed, r); err != nil {
			return nil, err
		}
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// provision makes the platform in dir sign with the key of seed, keeping
// its seal secret if it has one.
func provision(dir string, seed []byte, r io.Reader) error {
	path := filepath.Join(dir, platformFile)
	var secret []byte
	old, oldSecret, err := loadExisting(path)
	switch {
	case err == nil:
		clear(old)
		secret = oldSecret
	case errors.Is(err, fs.ErrNotExist):
		secret = make([]byte, 32)
		if _, err := io.ReadFull(r, secret); err != nil {
			return fmt.Errorf("sim: platform secret: %w", err)
		}
	default:
		return err
	}
	defer clear(secret)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	data := make([]byte, 0, len(platformMagic)+64)
	data = append(data, platformMagic...)
	data = append(data, seed...)
	data = append(data, secret...)
	defer clear(data)
	return writeReplace(dir, path, data)
}

// ReadPlatformKey returns the public key of the platform in dir (an error
// wrapping fs.ErrNotExist if there is none yet).
func ReadPlatformKey(dir string) (ed25519.PublicKey, error) {
	seed, secret, err := loadExisting(filepath.Join(dir, platformFile))
	clear(secret)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// parsePlatform splits a platform file's contents b into its seed and
// secret (copies; the caller clears b).
func parsePlatform(path string, b []byte) (seed, secret []byte, err error) {
	if len(b) != len(platformMagic)+64 || !bytes.Equal(b[:len(platformMagic)], []byte(platformMagic)) {
		return nil, nil, fmt.Errorf("sim: %s is not a sim platform file", path)
	}
	body := b[len(platformMagic):]
	return bytes.Clone(body[:32]), bytes.Clone(body[32:]), nil
}

func loadExisting(path string) (seed, secret []byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: reading platform: %w", err)
	}
	defer clear(b)
	return parsePlatform(path, b)
}

// writeReplace writes data to path through a synced temporary file and a
// rename, so that path is never partial.
func writeReplace(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".platform-*")
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = f.Write(data)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("sim: %w", werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

func hide[T any](v T) func() T { return func() T { return v } }

// Platform returns "sim".
func (*Backend) Platform() string { return enclave.PlatformSim }

// Simulated returns true.
func (*Backend) Simulated() bool { return true }

// Measurement returns SHA-256 of the executable measured at Open.
func (b *Backend) Measurement() enclave.Measurement { return b.measurement }

// PlatformKey returns the public key that signs this platform's quotes.
func (b *Backend) PlatformKey() ed25519.PublicKey {
	return bytes.Clone(b.secrets().signKey.Public().(ed25519.PublicKey))
}

// Quote returns a simulated quote over reportData signed by the platform key.
func (b *Backend) Quote(reportData enclave.ReportData) (*enclave.Quote, error) {
	q := &enclave.Quote{
		Platform:    enclave.PlatformSim,
		Simulated:   true,
		Measurement: b.measurement,
		ReportData:  reportData,
	}
	sig := ed25519.Sign(b.secrets().signKey, append([]byte(quoteDomain), q.SignedBytes()...))
	q.Evidence = append(b.PlatformKey(), sig...)
	return q, nil
}

// VerifyQuote checks a sim quote against the trusted platform keys roots:
// the quote must be signed by one of them. The key the evidence names is
// only a hint of which root signed; it is never trusted by itself, since
// anyone can make a key and sign a quote with it. With no roots every quote
// is refused (ErrNoRoot).
func VerifyQuote(q *enclave.Quote, roots []ed25519.PublicKey) error {
	if q.Platform != enclave.PlatformSim {
		return fmt.Errorf("sim: quote is from platform %q", q.Platform)
	}
	if !q.Simulated {
		return errors.New("sim: quote does not say it is simulated")
	}
	if len(q.Evidence) != evidenceLen {
		return fmt.Errorf("sim: quote evidence is %d bytes, want %d", len(q.Evidence), evidenceLen)
	}
	if len(roots) == 0 {
		return ErrNoRoot
	}
	named := q.Evidence[:ed25519.PublicKeySize]
	var root ed25519.PublicKey
	for _, r := range roots {
		if len(r) == ed25519.PublicKeySize && subtle.ConstantTimeCompare(r, named) == 1 {
			root = r
		}
	}
	if root == nil {
		return fmt.Errorf("%w: the quote is signed by platform key %x", ErrUntrustedPlatform, named)
	}
	sig := q.Evidence[ed25519.PublicKeySize:]
	if !ed25519.Verify(root, append([]byte(quoteDomain), q.SignedBytes()...), sig) {
		return errors.New("sim: quote signature does not verify")
	}
	return nil
}

var (
	// ErrNoRoot: no sim platform key is trusted, so no sim quote can be
	// verified.
	ErrNoRoot = errors.New("sim: no trusted platform key")
	// ErrUntrustedPlatform: the quote is signed by a platform key that is not
	// one of the trusted roots.
	ErrUntrustedPlatform = errors.New("sim: quote is not signed by a trusted platform key")
)

// LocalVerifier returns an enclave.Verifier for migration on this host: the
// quote must be signed by this platform's key and report the measurement want.
func (b *Backend) LocalVerifier(want enclave.Measurement) enclave.Verifier {
	own := []ed25519.PublicKey{b.PlatformKey()}
	return func(q *enclave.Quote) error {
		if err := VerifyQuote(q, own); err != nil {
			return err
		}
		if !q.Measurement.Equal(want) {
			return fmt.Errorf("sim: quote measurement is %s, want %s", q.Measurement, want)
		}
		return nil
	}
}

func (b *Backend) sealKey(m enclave.Measurement, label string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, b.secrets().sealSecret, m[:], sealDomain+label, 32)
	if err != nil {
		return nil, fmt.Errorf("sim: seal key: %w", err)
	}
	defer clear(key)
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sim: seal key: %w", err)
	}
	return cipher.NewGCM(blk)
}

// Seal encrypts plaintext under a key derived from the platform secret, this
// measurement and label.
func (b *Backend) Seal(plaintext []byte, label string) ([]byte, error) {
	aead, err := b.sealKey(b.measurement, label)
	if err != nil {
		return nil, err
	}
	s := enclave.Sealed{Platform: enclave.PlatformSim, Measurement: b.measurement}
	nonce := make([]byte, gcmNonceLen, gcmNonceLen+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(b.rand, nonce); err != nil {
		return nil, fmt.Errorf("sim: seal nonce: %w", err)
	}
	s.Payload = aead.Seal(nonce, nonce, plaintext, s.Header())
	return s.MarshalBinary()
}

// Unseal opens a blob made by Seal with the same label. A blob sealed by
// another measurement fails with *enclave.MeasurementError before any
// decryption; other failures wrap enclave.ErrUnseal.
func (b *Backend) Unseal(sealed []byte, label string) ([]byte, error) {
	var s enclave.Sealed
	if err := s.UnmarshalBinary(sealed); err != nil {
		return nil, fmt.Errorf("%w: %w", enclave.ErrUnseal, err)
	}
	if s.Platform != enclave.PlatformSim {
		return nil, fmt.Errorf("%w: sealed by platform %q, this is %q", enclave.ErrUnseal, s.Platform, enclave.PlatformSim)
	}
	if !s.Measurement.Equal(b.measurement) {
		return nil, &enclave.MeasurementError{SealedTo: s.Measurement, Running: b.measurement}
	}
	if len(s.Payload) < gcmNonceLen {
		return nil, fmt.Errorf("%w: payload too short", enclave.ErrUnseal)
	}
	aead, err := b.sealKey(b.measurement, label)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, s.Payload[:gcmNonceLen], s.Payload[gcmNonceLen:], s.Header())
	if err != nil {
		return nil, fmt.Errorf("%w: wrong label, another platform, or tampered blob", enclave.ErrUnseal)
	}
	return pt, nil
}

// GenerateKey makes a key with the backend's randomness and seals it under
// label.
func (b *Backend) GenerateKey(kind enclave.KeyKind, label string) (*enclave.Key, []byte, error) {
	k, err := enclave.NewKey(kind, b.rand)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := enclave.SealKey(b, k, label)
	if err != nil {
		return nil, nil, err
	}
	return k, sealed, nil
}

// Close clears the platform secrets from memory. The backend must not be
// used afterwards.
func (b *Backend) Close() error {
	clear(b.secrets().signKey)
	clear(b.secrets().sealSecret)
	return nil
}
