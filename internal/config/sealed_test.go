package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

func simBackend(t *testing.T, dir string) *sim.Backend {
	t.Helper()
	b, err := sim.Open(sim.Config{Dir: filepath.Join(dir, "enclave-sim")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestLoadSealedIdentity(t *testing.T) {
	dir := t.TempDir()
	b := simBackend(t, dir)
	if _, _, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no key at all: %v", err)
	}
	orig, _, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, migrated, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity)
	if err != nil || !migrated || !id.Equal(orig) {
		t.Fatalf("first load: migrated=%v err=%v", migrated, err)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("plaintext key kept")
	}
	id, migrated, err = LoadSealedIdentity(dir, b, enclave.LabelIdentity)
	if err != nil || migrated || !id.Equal(orig) {
		t.Fatalf("second load: migrated=%v err=%v", migrated, err)
	}

	// Both files with the same key (a crash before the removal): the
	// plaintext one goes.
	if err := writeIdentity(filepath.Join(dir, IdentityFile), orig); err != nil {
		t.Fatal(err)
	}
	if id, _, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity); err != nil || !id.Equal(orig) {
		t.Fatalf("both files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("plaintext key kept next to the sealed one")
	}
	// Both files with different keys: refused, nothing removed.
	other, _ := GenerateIdentity()
	if err := writeIdentity(filepath.Join(dir, IdentityFile), other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity); err == nil || !strings.Contains(err.Error(), "different identity keys") {
		t.Fatalf("different keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); err != nil {
		t.Fatal("a key was removed after a refusal")
	}
	os.Remove(filepath.Join(dir, IdentityFile))

	// Wrong label, corrupt blob, loose mode: each refused.
	if _, _, err := LoadSealedIdentity(dir, b, "other"); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("wrong label: %v", err)
	}
	sealedPath := filepath.Join(dir, SealedIdentityFile)
	blob, _ := os.ReadFile(sealedPath)
	blob[len(blob)-1] ^= 1
	if err := ReplaceSealedIdentityFile(dir, blob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("corrupt blob: %v", err)
	}
	os.Chmod(sealedPath, 0o644)
	if _, _, err := LoadSealedIdentity(dir, b, enclave.LabelIdentity); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose mode: %v", err)
	}
}

// TestSealedIdentityOtherPlatform: the sealed key does not open on another
// (simulated) platform instance, e.g. a data dir copied to another host.
func TestSealedIdentityOtherPlatform(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealedIdentity(dir, simBackend(t, dir), enclave.LabelIdentity); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealedIdentity(dir, simBackend(t, t.TempDir()), enclave.LabelIdentity); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("another platform: %v", err)
	}
}

// TestInitForceKeepsSealedIdentity: `cluster init --force` over a cluster
// whose node 1 has sealed its key keeps that key (from identity.pub) and
// does not make a new plaintext one.
func TestInitForceKeepsSealedIdentity(t *testing.T) {
	out := t.TempDir()
	nodes, err := InitCluster(InitOptions{Nodes: 2, Threshold: 2, Out: out, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := nodes[0].DataDir
	want := nodes[1].Peers[0].IdentityKey
	id, _, err := LoadSealedIdentity(dir, simBackend(t, dir), enclave.LabelIdentity)
	if err != nil {
		t.Fatal(err)
	}
	id.Destroy()
	if b, _ := os.ReadFile(filepath.Join(dir, IdentityPublicFile)); string(b) != want+"\n" {
		t.Fatalf("identity.pub %q, want %q", b, want)
	}
	again, err := InitCluster(InitOptions{Nodes: 2, Threshold: 2, Out: out, BasePort: 1, SkipPortCheck: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := again[1].Peers[0].IdentityKey; got != want {
		t.Fatalf("node 1's key became %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("init made a plaintext key next to the sealed one")
	}
	// A sealed key without its public file is an error, not a new key.
	os.Remove(filepath.Join(dir, IdentityPublicFile))
	if _, err := InitCluster(InitOptions{Nodes: 2, Threshold: 2, Out: out, BasePort: 1, SkipPortCheck: true, Force: true}); err == nil || !strings.Contains(err.Error(), "public key is missing") {
		t.Fatalf("missing identity.pub: %v", err)
	}
}
