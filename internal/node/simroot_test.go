package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

// simRoot is the sim platform key of n's enclave, in hex: the root a client
// pins to verify n's quotes (config.Node.SimPlatformKey, as cluster init
// provisioned it).
func simRoot(n *Node) string { return hex.EncodeToString(simRoots(n)[0]) }

func simRoots(n *Node) []ed25519.PublicKey {
	return []ed25519.PublicKey{n.Enclave().(*sim.Backend).PlatformKey()}
}

// TestSimPlatformKeyChecked: a node whose sim platform is not the one
// cluster init provisioned (here: lost, so the node makes a new one) says
// so in its log, naming both keys: the cluster's clients will refuse its
// quotes.
func TestSimPlatformKeyChecked(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	c := cfgs[0]
	if err := os.Remove(filepath.Join(c.DataDir, EnclaveSimDir, "platform")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	n, err := New(Options{Config: c, Logger: slog.New(slog.NewTextHandler(&log, nil)), AllowPlaintext: true,
		APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if !strings.Contains(log.String(), "sim_platform_key="+c.SimPlatformKey) || !strings.Contains(log.String(), "clients will refuse") {
		t.Fatalf("no warning about the platform key:\n%s", log.String())
	}
}
