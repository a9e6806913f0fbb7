package config

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

// TestInitClusterSimRoot: cluster init gives every node one sim platform
// key, names it in each config, and writes it for the clients; a re-init
// with Force keeps it.
func TestInitClusterSimRoot(t *testing.T) {
	out := t.TempDir()
	nodes, err := InitCluster(InitOptions{Nodes: 3, Threshold: 2, Out: out, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCluster(out, nodes); err != nil {
		t.Fatal(err)
	}
	root := nodes[0].SimPlatformKey
	if _, err := attest.ParseSimPlatformKey(root); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		pub, err := sim.ReadPlatformKey(filepath.Join(n.DataDir, sim.DirName))
		if err != nil || hex.EncodeToString(pub) != root || n.SimPlatformKey != root {
			t.Fatalf("node %d: platform key %x, config %s, root %s: %v", n.ID, pub, n.SimPlatformKey, root, err)
		}
		back, err := Load(filepath.Join(out, FileName(n.ID)))
		if err != nil || back.SimPlatformKey != root {
			t.Fatalf("node %d config: %v", n.ID, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, attest.SimPlatformKeyFile))
	if err != nil || strings.TrimSpace(string(b)) != root {
		t.Fatalf("%s: %q %v", attest.SimPlatformKeyFile, b, err)
	}
	again, err := InitCluster(InitOptions{Nodes: 3, Threshold: 2, Out: out, SkipPortCheck: true, Force: true})
	if err != nil || again[0].SimPlatformKey != root {
		t.Fatalf("re-init kept the root? %v", err)
	}
	other, err := InitCluster(InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), SkipPortCheck: true})
	if err != nil || other[0].SimPlatformKey == root {
		t.Fatalf("another cluster has the same root: %v", err)
	}
	bad := *nodes[0]
	bad.SimPlatformKey = "zz"
	if err := bad.Validate(); err == nil {
		t.Fatal("a malformed sim_platform_key validates")
	}
}
