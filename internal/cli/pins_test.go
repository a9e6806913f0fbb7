package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
)

// TestPinsPersist plays finding 4: `--seal` pins the node's build (and its
// identity and roots) in the credentials file on first use; on the next
// run against a node whose measurement changed, the CLI refuses, naming
// both builds and saying how to accept the new one; approvals by t−1 nodes
// do not accept it; the cluster's release authorisation (t approvals)
// does, and the new build becomes the pin. The same holds with a
// known-nodes file.
func TestPinsPersist(t *testing.T) {
	base := porttest.Block(t, 6)
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: dir, BasePort: base})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteCluster(dir, cfgs); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	m := n.Enclave().Measurement()
	url := n.APIURL()
	root := cfgs[0].SimPlatformKey
	old := strings.Repeat("0a", 32) // the build the client pinned before the node changed

	dev, _ := client.GenerateKey("ed25519")
	credsPath := filepath.Join(t.TempDir(), "creds.json")
	if err := writeCreds(credsPath, &credsFile{URL: url, Scope: "s", Account: "a", DeveloperKey: dev.MarshalPrivate(), PlatformKeys: []string{root}}, false); err != nil {
		t.Fatal(err)
	}
	readPin := func() *credsFile {
		t.Helper()
		f, err := readCredsFile(credsPath)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// refusedByPin: the attestation was refused because of the pin (a call
	// that reached the node fails later, for the unknown scope).
	refusedByPin := func(errOut string) bool { return strings.Contains(errOut, "now runs build") }

	// First run: trust on first use, recorded in the credentials file.
	code, _, errOut := runCLI(t, "account", "list", "--creds", credsPath, "--seal", "--allow-simulated")
	if refusedByPin(errOut) || !strings.Contains(errOut, "first use") {
		t.Fatalf("first run: exit %d\n%s", code, errOut)
	}
	f := readPin()
	if len(f.Measurements) != 1 || f.Measurements[0] != m.String() || f.NodeIdentity != cfgs[1].Peers[0].IdentityKey || !f.AllowSimulated || f.PlatformKeys[0] != root {
		t.Fatalf("first run pinned %+v", f)
	}
	// Second run, no flags: sealed to the pinned build, no warning.
	if code, _, errOut := runCLI(t, "account", "list", "--creds", credsPath); refusedByPin(errOut) || strings.Contains(errOut, "first use") {
		t.Fatalf("second run, same build: exit %d\n%s", code, errOut)
	}

	// The node's build changed since the pin was recorded.
	f.Measurements = []string{old}
	if err := writeCreds(credsPath, f, true); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "account", "list", "--creds", credsPath)
	for _, want := range []string{"now runs build " + m.String(), "build " + old + " is pinned", "approve-release", "--release"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("changed measurement: exit %d, %q missing:\n%s", code, want, errOut)
		}
	}
	t.Logf("refusal: %s", errOut)
	if got := readPin(); got.Measurements[0] != old {
		t.Fatal("a refused run changed the pin")
	}

	// Release approvals, each signed by a node's identity key in its enclave.
	approval := func(c *config.Node) string {
		a, err := node.ApproveRelease(c, m, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(a)
		p := filepath.Join(t.TempDir(), "approval.json")
		os.WriteFile(p, b, 0o644)
		return p
	}
	a1, a2 := approval(cfgs[0]), approval(cfgs[1])
	roster := filepath.Join(dir, config.RosterFile)
	code, _, errOut = runCLI(t, "account", "list", "--creds", credsPath, "--release", a1, "--cluster", roster)
	if code == 0 || !refusedByPin(errOut) || !strings.Contains(errOut, "1 valid approval(s)") {
		t.Fatalf("t-1 approvals: exit %d\n%s", code, errOut)
	}
	// Approvals checked against another cluster's roster do not count.
	other := filepath.Join(t.TempDir(), "other.json")
	ob, _ := json.Marshal(config.Roster{ClusterID: "other", Threshold: 2, Identities: []string{cfgs[1].Peers[0].IdentityKey, cfgs[0].Peers[0].IdentityKey}})
	os.WriteFile(other, ob, 0o644)
	if code, _, errOut := runCLI(t, "account", "list", "--creds", credsPath, "--release", a1, "--release", a2, "--cluster", other); code == 0 || !refusedByPin(errOut) {
		t.Fatalf("approvals for another cluster: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "account", "list", "--creds", credsPath, "--release", a1, "--release", a2, "--cluster", roster); refusedByPin(errOut) {
		t.Fatalf("t approvals: exit %d\n%s", code, errOut)
	}
	if got := readPin(); got.Measurements[0] != m.String() {
		t.Fatalf("the approved build was not pinned: %v", got.Measurements)
	}
	if code, _, errOut := runCLI(t, "account", "list", "--creds", credsPath); refusedByPin(errOut) {
		t.Fatalf("after the approved change: exit %d\n%s", code, errOut)
	}

	// A known-nodes file, without a credentials file.
	known := filepath.Join(t.TempDir(), "known_nodes.json")
	keyFile := filepath.Join(t.TempDir(), "dev.key")
	os.WriteFile(keyFile, []byte(dev.MarshalPrivate()), 0o600)
	args := []string{"account", "list", "--url", url, "--key-file", keyFile, "--scope", "s", "--account", "a", "--known-nodes", known, "--platform-key", root}
	if code, _, errOut := runCLI(t, append(args, "--seal", "--allow-simulated")...); refusedByPin(errOut) {
		t.Fatalf("known-nodes, first run: exit %d\n%s", code, errOut)
	}
	pin, err := client.KnownNodes(known).LoadPin(url)
	if err != nil || pin == nil || pin.Measurement != m.String() || pin.Platform != "sim" {
		t.Fatalf("known-nodes pin: %+v %v", pin, err)
	}
	pin.Measurement = old
	client.KnownNodes(known).StorePin(url, *pin)
	if code, _, errOut := runCLI(t, append(args, "--seal")...); code == 0 || !strings.Contains(errOut, "now runs build "+m.String()) {
		t.Fatalf("known-nodes, changed measurement: exit %d\n%s", code, errOut)
	}
}

// TestDevSetupSealPins: `account create --dev-setup --seal` writes the
// verified build, the node's identity and the cluster roster into the
// credentials file, so a later command without any flag seals to that build
// (it used to fall back to plaintext, proofs in the clear) and refuses
// another one.
func TestDevSetupSealPins(t *testing.T) {
	dir := t.TempDir()
	text, _, stop := devRun(t, "--dir", filepath.Join(dir, "cluster"), "--base-port", fmt.Sprint(porttest.Block(t, 6)))
	defer stop()
	url := nodeLine.FindStringSubmatch(text)[2]
	creds := filepath.Join(dir, "creds.json")
	mustRun(t, "account", "create", "--dev-setup", "--seal", "--allow-simulated", "--creds", creds, "--account", "alice", "--url", url, "--dev-dir", filepath.Join(dir, "cluster"))
	f, err := readCredsFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`measurement ([0-9a-f]{64})`).FindStringSubmatch(text)
	if m == nil || len(f.Measurements) != 1 || f.Measurements[0] != m[1] || f.NodeIdentity == "" || !f.AllowSimulated ||
		f.Cluster == nil || f.Cluster.Threshold != 2 || len(f.Cluster.Identities) != 3 {
		t.Fatalf("--dev-setup --seal wrote %+v (dev: %v)", f, m)
	}
	if _, errOut, code := run(t, "sign", "message", "--creds", creds, "pinned"); code != 0 || strings.Contains(errOut, "first use") {
		t.Fatalf("a later command with the pinned build: exit %d\n%s", code, errOut)
	}
	f.Measurements = []string{strings.Repeat("0c", 32)}
	if err := writeCreds(creds, f, true); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, "sign", "message", "--creds", creds, "changed"); code == 0 || !strings.Contains(errOut, "now runs build "+m[1]) {
		t.Fatalf("changed build: exit %d\n%s", code, errOut)
	}
}
