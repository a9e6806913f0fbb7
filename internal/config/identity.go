package config

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// IdentityFile is the name of the identity key file inside a data dir.
const IdentityFile = "identity.key"

const pemType = "PRIVATE KEY"

// Identity is a node's long-term Ed25519 identity key: peers pin its public
// half (Peer.IdentityKey) and the transport authenticates with it.
//
// The private key never leaves the value: there is no accessor, every fmt
// verb prints only the public key, and Identity implements crypto.Signer so
// that TLS and x509 can sign with it without seeing it. Identities are not
// comparable with ==; use Equal, which runs in constant time.
type Identity struct {
	priv ed25519.PrivateKey
}

var _ crypto.Signer = (*Identity)(nil)

// GenerateIdentity returns a fresh identity from crypto/rand.
func GenerateIdentity() (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("config: generating identity key: %w", err)
	}
	return &Identity{priv: priv}, nil
}

// Public returns the ed25519.PublicKey, as crypto.Signer requires.
func (id *Identity) Public() crypto.PublicKey { return id.PublicKey() }

// PublicKey returns a copy of the public key.
func (id *Identity) PublicKey() ed25519.PublicKey {
	return bytes.Clone(id.priv.Public().(ed25519.PublicKey))
}

// PublicKeyString returns the public key as config files write it.
func (id *Identity) PublicKeyString() string { return EncodePublicKey(id.PublicKey()) }

// Sign signs message with Ed25519 (opts must be crypto.Hash(0), or
// *ed25519.Options), as crypto.Signer says.
func (id *Identity) Sign(rand io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	return id.priv.Sign(rand, message, opts)
}

// Equal reports in constant time whether id and other hold the same key.
func (id *Identity) Equal(other *Identity) bool {
	return subtle.ConstantTimeCompare(id.priv, other.priv) == 1
}

// Destroy zeroes the private key; the Identity must not be used afterwards.
func (id *Identity) Destroy() { clear(id.priv) }

// Format prints the public key only, whatever the verb, so that a stray
// %v or %#v in a log line cannot leak the private key.
// It has a value receiver so that printing an Identity value (not just a
// pointer) is covered too.
func (id Identity) Format(f fmt.State, verb rune) {
	if len(id.priv) != ed25519.PrivateKeySize {
		io.WriteString(f, "config.Identity(<nil>)")
		return
	}
	fmt.Fprintf(f, "config.Identity(public %s)", id.PublicKeyString())
}

// LoadOrCreateIdentity loads <dataDir>/identity.key, or creates it (and
// dataDir, mode 0700) with a fresh key when it does not exist; created
// reports which. The file is written with mode 0600; an existing file that
// is not a regular file, or that the group or others may read or write, is
// refused with an error naming the file and its mode.
//
// The file is a PEM "PRIVATE KEY" block holding the PKCS #8 encoding of the
// key (RFC 8410), nothing else. Load and store live in encodeIdentity and
// decodeIdentity only, so that sealing the file to an enclave later changes
// these two functions and nothing else.
func LoadOrCreateIdentity(dataDir string) (id *Identity, created bool, err error) {
	if dataDir == "" {
		return nil, false, errors.New("config: empty data dir")
	}
	path := filepath.Join(dataDir, IdentityFile)
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		id, err := readIdentity(path, fi)
		return id, false, err
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("config: %w", err)
	}
	id, err = GenerateIdentity()
	if err != nil {
		return nil, false, err
	}
	if err := writeIdentity(path, id); err != nil {
		id.Destroy()
		if errors.Is(err, fs.ErrExist) {
			// Someone created it between our Lstat and now: use theirs.
			return LoadOrCreateIdentity(dataDir)
		}
		return nil, false, err
	}
	return id, true, nil
}

func readIdentity(path string, fi fs.FileInfo) (*Identity, error) {
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: identity key %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("config: identity key %s has mode %04o, readable or writable by group or others; run chmod 600 on it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer clear(data)
	id, err := decodeIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("config: identity key %s: %w", path, err)
	}
	return id, nil
}

// writeIdentity writes the key to a temporary file, syncs it and links it
// into place, so that a crash never leaves a half-written key and an
// existing key is never replaced.
func writeIdentity(path string, id *Identity) error {
	data, err := encodeIdentity(id)
	if err != nil {
		return err
	}
	defer clear(data)
	f, err := os.CreateTemp(filepath.Dir(path), ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("config: writing identity key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("config: writing identity key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config: writing identity key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func encodeIdentity(id *Identity) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return nil, fmt.Errorf("config: encoding identity key: %w", err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// decodeIdentity is strict: exactly one PEM block of type PRIVATE KEY with
// no headers and nothing after it, holding the PKCS #8 encoding of an
// Ed25519 key, all in the one canonical form encodeIdentity produces.
func decodeIdentity(data []byte) (*Identity, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	defer clear(block.Bytes)
	if block.Type != pemType || len(block.Headers) != 0 {
		return nil, fmt.Errorf("PEM block %q, want %q without headers", block.Type, pemType)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the PEM block", len(rest))
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS #8 private key")
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", key)
	}
	id := &Identity{priv: priv}
	// One encoding per key: what encodeIdentity writes (which is also what
	// `openssl genpkey -algorithm ed25519` writes), byte for byte.
	again, err := encodeIdentity(id)
	if err != nil || !bytes.Equal(again, data) {
		clear(again)
		id.Destroy()
		return nil, errors.New("non-canonical encoding (PEM line breaks or PKCS #8 fields differ from the standard form)")
	}
	clear(again)
	return id, nil
}
