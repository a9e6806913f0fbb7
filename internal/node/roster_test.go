package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
)

// newNodeErr is New for cfg, returning its error (the node is closed when
// it starts).
func newNodeErr(t *testing.T, cfg *config.Node) error {
	t.Helper()
	n, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0"), Transport: fastLinks})
	if err == nil {
		n.Close()
	}
	return err
}

// TestRosterBoundIdentity plays node 1's operator in a 2-of-3 cluster who
// wants to authorise a build alone: they edit node 1's config so that peer
// 2's identity_key is a key of their own, to sign "node 2's" approval
// with it. The identity is sealed under a label naming the roster, so with
// the edited config node 1 cannot open its identity: approve-release,
// migrate-out and the node itself refuse, naming the roster. The same holds
// for an edited threshold or cluster id. Restoring the config restores the
// node.
func TestRosterBoundIdentity(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &sealedNode{cfgs: cfgs}
	s.start(t) // seals node 1's identity under its roster
	s.stop()
	cfg := cfgs[0]
	b, err := OpenEnclave(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Measurement()
	b.Close()

	attacker, _, _ := ed25519.GenerateKey(nil)
	swapped := *cfg
	swapped.Peers = append([]config.Peer(nil), cfg.Peers...)
	swapped.Peers[0].IdentityKey = base64.StdEncoding.EncodeToString(attacker)
	threshold := *cfg
	threshold.Threshold = 3
	cluster := *cfg
	cluster.ClusterID = "another-cluster"
	moved := *cfg // a peer's address is not part of the roster
	moved.Peers = append([]config.Peer(nil), cfg.Peers...)
	moved.Peers[1].PeerAddr = "127.0.0.1:1"

	for name, c := range map[string]*config.Node{"peer key swapped": &swapped, "threshold changed": &threshold, "cluster id changed": &cluster} {
		if _, err := ApproveRelease(c, m, time.Hour, time.Now()); err == nil || !strings.Contains(err.Error(), "bound to the cluster roster") {
			t.Fatalf("%s: approve-release: %v", name, err)
		}
		in, req, err := StartMigrateIn(c)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = MigrateOut(context.Background(), c, req, m, nil)
		in.Close()
		if err == nil || !strings.Contains(err.Error(), "bound to the cluster roster") {
			t.Fatalf("%s: migrate-out: %v", name, err)
		}
		if err := newNodeErr(t, c); err == nil || !strings.Contains(err.Error(), "bound to the cluster roster") {
			t.Fatalf("%s: node start: %v", name, err)
		}
	}
	if _, err := ApproveRelease(&moved, m, time.Hour, time.Now()); err != nil {
		t.Fatalf("a moved peer address: %v", err)
	}
	if _, err := ApproveRelease(cfg, m, time.Hour, time.Now()); err != nil {
		t.Fatalf("the original config: %v", err)
	}
	s.start(t)
	s.stop()
}

// TestLegacyIdentityRebound: a sim data dir whose identity was sealed
// before the roster binding (under the bare label) starts once and is
// bound to its config's roster; from then on an edited roster is refused.
func TestLegacyIdentityRebound(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgs[0]
	b, err := OpenEnclave(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := config.LoadSealedIdentity(cfg.DataDir, b, enclave.LabelIdentity) // the old build's sealing
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := id.PublicKeyString()
	id.Destroy()

	s := &sealedNode{cfgs: cfgs}
	s.start(t)
	s.stop()
	b, err = OpenEnclave(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := config.OpenIdentity(cfg.DataDir, b, enclave.LabelIdentity); err == nil {
		t.Fatal("the identity still opens under the bare label after the first start")
	}
	label, err := identityLabel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err = config.OpenIdentity(cfg.DataDir, b, label)
	if err != nil {
		t.Fatal(err)
	}
	if got := id.PublicKeyString(); got != want {
		t.Fatalf("rebound identity %s, want %s", got, want)
	}
	id.Destroy()
	edited := *cfg
	edited.ClusterID = "another-cluster"
	if err := newNodeErr(t, &edited); err == nil || !strings.Contains(err.Error(), "bound to the cluster roster") {
		t.Fatalf("edited roster after the rebind: %v", err)
	}
}
