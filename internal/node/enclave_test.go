package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

// sealedNode is one node of a 2-node cluster, started without the dev flag:
// it serves only sealed requests.
type sealedNode struct {
	cfgs []*config.Node
	n    *Node
	stop func()
}

func newSealedNode(t *testing.T) *sealedNode {
	t.Helper()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &sealedNode{cfgs: cfgs}
	s.start(t)
	return s
}

func (s *sealedNode) start(t *testing.T) {
	t.Helper()
	n, err := New(Options{Config: s.cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0"), Transport: fastLinks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	s.n = n
	s.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(s.stop)
}

// TestIdentitySealedAtRest: the plaintext key `cluster init` wrote is sealed
// on first start and removed; the sealed file does not hold the key in the
// clear; the node starts again from the sealed file with the same identity.
func TestIdentitySealedAtRest(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := cfgs[0].DataDir
	plain, err := os.ReadFile(filepath.Join(dir, config.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	wantPub := cfgs[1].Peers[0].IdentityKey // node 1 as node 2 pins it
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for round := range 2 {
		n, err := New(Options{Config: cfgs[0], Logger: logger, APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0")})
		if err != nil {
			t.Fatalf("start %d: %v", round, err)
		}
		if n.IdentityKey() != wantPub {
			t.Fatalf("start %d: identity %s, want %s", round, n.IdentityKey(), wantPub)
		}
		if n.Enclave() == nil || n.Enclave().Platform() != enclave.PlatformSim {
			t.Fatalf("enclave %v", n.Enclave())
		}
		n.Close()
		if _, err := os.Stat(filepath.Join(dir, config.IdentityFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("plaintext identity key still there after start %d: %v", round, err)
		}
		sealed, err := os.ReadFile(filepath.Join(dir, config.SealedIdentityFile))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(dir, config.SealedIdentityFile))
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("sealed identity mode %v", fi.Mode())
		}
		// The PEM body (base64 of the PKCS #8 key) must not appear.
		body := plain[bytes.IndexByte(plain, '\n')+1 : len(plain)-len("-----END PRIVATE KEY-----\n")]
		if bytes.Contains(sealed, bytes.TrimSpace(body)) || bytes.Contains(sealed, plain) {
			t.Fatal("sealed identity holds the plaintext key")
		}
	}
}

// TestChangedBinaryRefused: an identity sealed by another build (another
// measurement on the same simulated platform) stops the node with a message
// that names both measurements and the migration commands.
func TestChangedBinaryRefused(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := cfgs[0].DataDir
	// "Another build": the same platform, measuring another executable.
	other := filepath.Join(t.TempDir(), "keymesh-other")
	if err := os.WriteFile(other, []byte("another build of keymesh"), 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := sim.Open(sim.Config{Dir: filepath.Join(dir, EnclaveSimDir), Executable: other})
	if err != nil {
		t.Fatal(err)
	}
	id, migrated, err := config.LoadSealedIdentity(dir, old, enclave.LabelIdentity)
	if err != nil || !migrated {
		t.Fatalf("sealing with the other build: %v %v", migrated, err)
	}
	id.Destroy()
	oldM := old.Measurement()
	old.Close()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = New(Options{Config: cfgs[0], Logger: logger, APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0")})
	if err == nil {
		t.Fatal("node started with an identity sealed by another build")
	}
	self, err2 := OpenEnclave(t.TempDir())
	if err2 != nil {
		t.Fatal(err2)
	}
	defer self.Close()
	for _, want := range []string{"refusing to start", oldM.String(), self.Measurement().String(), "enclave migrate-in", "docs/enclave.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Nothing was changed: the sealed file is still the old build's.
	if _, err := os.Stat(filepath.Join(dir, config.SealedIdentityFile)); err != nil {
		t.Fatal(err)
	}
}
