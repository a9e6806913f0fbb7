package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// SealedIdentityFile is the name of the sealed identity key inside a data
// dir: the identity key encrypted by the node's enclave backend
// (docs/enclave.md), written by the node on its first start.
const SealedIdentityFile = "identity.sealed"

// IdentityPublicFile holds the public half of a sealed identity key (the
// config encoding and a newline), written next to SealedIdentityFile so that
// `keymesh cluster init --force` can rewrite the configs of a cluster whose
// nodes have already sealed their keys without unsealing them.
const IdentityPublicFile = "identity.pub"

// Sealer seals and unseals secrets at rest; enclave.Backend implements it.
// It is an interface here so that config does not depend on the enclave
// packages.
type Sealer interface {
	Seal(plaintext []byte, label string) ([]byte, error)
	Unseal(sealed []byte, label string) ([]byte, error)
}

// LoadSealedIdentity returns the node's identity key, kept sealed at rest
// by s under label:
//
//   - <dataDir>/identity.sealed exists: it is unsealed. An error from
//     Unseal is wrapped as it is (%w), so that the caller can tell a
//     changed binary (*enclave.MeasurementError) from a corrupt file.
//   - only the plaintext <dataDir>/identity.key exists (as `keymesh cluster
//     init` writes it): it is sealed, the sealed file is written and synced,
//     and then the plaintext file is removed; migrated reports it.
//   - neither exists: an error wrapping fs.ErrNotExist. A node never makes
//     up its identity, since its peers pin the public key.
//
// Why not seal at init: `cluster init` runs on the operator's machine, not
// in the node's enclave, and on real hardware it cannot seal to the node's
// measurement; the plaintext key lives only until the node's first start.
//
// If both files exist (a crash between the write and the removal), the
// sealed one wins if it holds the same key, and the plaintext one is
// removed; a different key is an error naming both files.
func LoadSealedIdentity(dataDir string, s Sealer, label string) (id *Identity, migrated bool, err error) {
	if dataDir == "" {
		return nil, false, errors.New("config: empty data dir")
	}
	sealedPath := filepath.Join(dataDir, SealedIdentityFile)
	plainPath := filepath.Join(dataDir, IdentityFile)
	plainFI, plainErr := os.Lstat(plainPath)
	if plainErr != nil && !errors.Is(plainErr, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("config: %w", plainErr)
	}
	sealedFI, err := os.Lstat(sealedPath)
	switch {
	case err == nil:
		id, err := readSealedIdentity(sealedPath, sealedFI, s, label)
		if err != nil {
			return nil, false, err
		}
		if plainErr == nil {
			plain, err := readIdentity(plainPath, plainFI)
			if err != nil {
				id.Destroy()
				return nil, false, err
			}
			same := plain.Equal(id)
			plain.Destroy()
			if !same {
				id.Destroy()
				return nil, false, fmt.Errorf("config: %s and %s hold different identity keys; remove the one that is not this node's", sealedPath, plainPath)
			}
			if err := os.Remove(plainPath); err != nil {
				id.Destroy()
				return nil, false, fmt.Errorf("config: removing the plaintext identity key: %w", err)
			}
		}
		if err := ensureIdentityPublic(dataDir, id); err != nil {
			id.Destroy()
			return nil, false, err
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("config: %w", err)
	}
	if plainErr != nil {
		return nil, false, fmt.Errorf("config: no identity key in %s: %w", dataDir, fs.ErrNotExist)
	}
	id, err = readIdentity(plainPath, plainFI)
	if err != nil {
		return nil, false, err
	}
	if err := ensureIdentityPublic(dataDir, id); err != nil {
		id.Destroy()
		return nil, false, err
	}
	if err := writeSealedIdentity(sealedPath, id, s, label); err != nil {
		id.Destroy()
		return nil, false, err
	}
	if err := os.Remove(plainPath); err != nil {
		id.Destroy()
		return nil, false, fmt.Errorf("config: removing the plaintext identity key: %w", err)
	}
	syncDir(dataDir)
	return id, true, nil
}

// ReadSealedIdentityFile returns the sealed identity blob of dataDir as
// stored (for migration between builds).
func ReadSealedIdentityFile(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, SealedIdentityFile)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := checkSecretFile(path, fi); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}

// ReplaceSealedIdentityFile atomically replaces the sealed identity blob of
// dataDir with sealed (a migration's output, sealed by the new build).
func ReplaceSealedIdentityFile(dataDir string, sealed []byte) error {
	path := filepath.Join(dataDir, SealedIdentityFile)
	tmp, err := writeTemp(filepath.Dir(path), ".identity-sealed-*.tmp", sealed)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	syncDir(dataDir)
	return nil
}

func checkSecretFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("config: %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("config: %s has mode %04o, readable or writable by group or others; run chmod 600 on it", path, fi.Mode().Perm())
	}
	return nil
}

func readSealedIdentity(path string, fi fs.FileInfo, s Sealer, label string) (*Identity, error) {
	if err := checkSecretFile(path, fi); err != nil {
		return nil, err
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	data, err := s.Unseal(blob, label)
	if err != nil {
		return nil, fmt.Errorf("config: sealed identity key %s: %w", path, err)
	}
	defer clear(data)
	id, err := decodeIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("config: sealed identity key %s: %w", path, err)
	}
	return id, nil
}

// writeSealedIdentity seals id and links the blob into place (never
// replacing an existing file).
func writeSealedIdentity(path string, id *Identity, s Sealer, label string) error {
	data, err := encodeIdentity(id)
	if err != nil {
		return err
	}
	defer clear(data)
	blob, err := s.Seal(data, label)
	if err != nil {
		return fmt.Errorf("config: sealing the identity key: %w", err)
	}
	tmp, err := writeTemp(filepath.Dir(path), ".identity-sealed-*.tmp", blob)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// writeTemp writes data to a new synced file of mode 0600 in dir and
// returns its name.
func writeTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("config: writing %s: %w", tmp, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("config: writing %s: %w", tmp, err)
	}
	return tmp, nil
}

// syncDir makes a rename or removal in dir durable; errors are ignored
// (some filesystems cannot sync directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ensureIdentityPublic writes IdentityPublicFile for id unless it already
// holds id's public key.
func ensureIdentityPublic(dataDir string, id *Identity) error {
	want := id.PublicKeyString() + "\n"
	path := filepath.Join(dataDir, IdentityPublicFile)
	if b, err := os.ReadFile(path); err == nil && string(b) == want {
		return nil
	}
	tmp, err := writeTemp(dataDir, ".identity-pub-*.tmp", []byte(want))
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// identityPublicKey returns the config encoding of the identity public key
// of dataDir for `cluster init`: from IdentityPublicFile when the key is
// sealed (it cannot be unsealed outside the node's enclave), else from the
// plaintext key, which is created if missing (LoadOrCreateIdentity).
func identityPublicKey(dataDir string) (string, error) {
	if _, err := os.Lstat(filepath.Join(dataDir, SealedIdentityFile)); err == nil {
		b, err := os.ReadFile(filepath.Join(dataDir, IdentityPublicFile))
		if err != nil {
			return "", fmt.Errorf("config: %s is sealed and its public key is missing: %w", filepath.Join(dataDir, SealedIdentityFile), err)
		}
		pub := strings.TrimSuffix(string(b), "\n")
		if _, err := ParsePublicKey(pub); err != nil {
			return "", fmt.Errorf("config: %s: %w", filepath.Join(dataDir, IdentityPublicFile), err)
		}
		return pub, nil
	}
	ident, _, err := LoadOrCreateIdentity(dataDir)
	if err != nil {
		return "", err
	}
	defer ident.Destroy()
	return ident.PublicKeyString(), nil
}

// OpenIdentity returns the node's identity key without changing the data
// dir: <dataDir>/identity.sealed unsealed by s (an Unseal error is wrapped
// as it is), else the plaintext identity.key of a node that never started.
// It is for commands that sign with the identity while the node is stopped
// (keymesh enclave approve-release) or that need its public key (migrate-out).
func OpenIdentity(dataDir string, s Sealer, label string) (*Identity, error) {
	sealedPath := filepath.Join(dataDir, SealedIdentityFile)
	fi, err := os.Lstat(sealedPath)
	if err == nil {
		return readSealedIdentity(sealedPath, fi, s, label)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: %w", err)
	}
	plainPath := filepath.Join(dataDir, IdentityFile)
	fi, err = os.Lstat(plainPath)
	if err != nil {
		return nil, fmt.Errorf("config: no identity key in %s: %w", dataDir, err)
	}
	return readIdentity(plainPath, fi)
}

// ResealIdentity seals id under label with s and atomically replaces the
// data dir's sealed identity file with the result (a node moving its
// identity to a new sealing label, docs/enclave.md).
func ResealIdentity(dataDir string, s Sealer, id *Identity, label string) error {
	data, err := encodeIdentity(id)
	if err != nil {
		return err
	}
	defer clear(data)
	blob, err := s.Seal(data, label)
	if err != nil {
		return fmt.Errorf("config: sealing the identity key: %w", err)
	}
	return ReplaceSealedIdentityFile(dataDir, blob)
}
