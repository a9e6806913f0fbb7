package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
	"github.com/keymesh/keymesh/internal/node"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestAttestVerifyMeasurement: `keymesh attest verify` against an in-process
// node (which measures this test binary) says match for its measurement and
// mismatch, naming both values, for another.
func TestAttestVerifyMeasurement(t *testing.T) {
	base := porttest.Block(t, 6)
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: base})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	m := n.Enclave().Measurement().String()
	url := n.APIURL()
	root := cfgs[0].SimPlatformKey

	code, out, errOut := runCLI(t, "attest", "verify", "--url", url, "--measurement", m, "--allow-simulated", "--platform-key", root)
	if code != 0 || !strings.Contains(out, "match: the node runs the expected build") || !strings.Contains(out, "measurement: "+m) ||
		!strings.Contains(out, "platform:    sim (simulated)") || !strings.Contains(errOut, "warning:") {
		t.Fatalf("match: exit %d\n%s\n%s", code, out, errOut)
	}
	other := strings.Repeat("0f", 32)
	code, out, errOut = runCLI(t, "attest", "verify", "--url", url, "--measurement", other, "--allow-simulated", "--platform-key", root)
	if code != 1 || !strings.Contains(out, "mismatch: node "+url+" reports measurement "+m) || !strings.Contains(out, "expected "+other) {
		t.Fatalf("mismatch: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "attest", "verify", "--url", url, "--measurement", m)
	if code != 1 || !strings.Contains(errOut, "simulated") {
		t.Fatalf("simulated without opt-in: exit %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, "attest", "verify", "--url", url, "--allow-simulated", "--platform-key", root)
	if code != 0 || !strings.Contains(out, "not compared") {
		t.Fatalf("no expectation: exit %d %s", code, out)
	}
	// The root may come from a credentials file.
	credsPath := filepath.Join(t.TempDir(), "creds.json")
	if err := writeCreds(credsPath, &credsFile{PlatformKeys: []string{root}}, false); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "attest", "verify", "--url", url, "--measurement", m, "--allow-simulated", "--creds", credsPath); code != 0 || !strings.Contains(out, "match") {
		t.Fatalf("root from --creds: exit %d\n%s\n%s", code, out, errOut)
	}
	// Without a root, a sim quote is refused, and the error says where the
	// root comes from.
	code, out, errOut = runCLI(t, "attest", "verify", "--url", url, "--measurement", m, "--allow-simulated")
	if code != 1 || strings.Contains(out, "match") || !strings.Contains(errOut, "--platform-key") || !strings.Contains(errOut, "keymesh cluster init") {
		t.Fatalf("no root: exit %d\n%s\n%s", code, out, errOut)
	}

	// Node binding: the expected node's identity matches; another node's
	// (node 2 of the cluster) is refused.
	id1, id2 := cfgs[1].Peers[0].IdentityKey, cfgs[0].Peers[0].IdentityKey
	if code, out, errOut := runCLI(t, "attest", "verify", "--url", url, "--measurement", m, "--allow-simulated", "--platform-key", root, "--node-identity", id1); code != 0 ||
		!strings.Contains(out, "match") || !strings.Contains(out, "identity:    "+id1) || !strings.Contains(out, "valid until") {
		t.Fatalf("expected identity: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "attest", "verify", "--url", url, "--measurement", m, "--allow-simulated", "--platform-key", root, "--node-identity", id2); code != 1 ||
		strings.Contains(out, "match") || !strings.Contains(errOut, "another node") {
		t.Fatalf("another node's identity: exit %d\n%s\n%s", code, out, errOut)
	}
	// Freshness: an on-path attacker replays a genuine document it recorded;
	// it was not made for this run's challenge.
	recorded, err := client.FetchAttestationFor(ctx, nil, url, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	replayer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(recorded)
	}))
	defer replayer.Close()
	if code, out, errOut := runCLI(t, "attest", "verify", "--url", replayer.URL, "--measurement", m, "--allow-simulated", "--platform-key", root); code != 1 ||
		strings.Contains(out, "match") || !strings.Contains(errOut, "challenge") {
		t.Fatalf("replayed attestation: exit %d\n%s\n%s", code, out, errOut)
	}

	// rotate-keys on the stopped node: new request keys, same identity.
	doc1, _ := client.FetchAttestation(ctx, nil, url)
	cancel()
	<-done
	stopped = true
	dir := t.TempDir()
	if err := config.WriteCluster(dir, cfgs); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "enclave", "rotate-keys", "--config", filepath.Join(dir, config.FileName(1))); code != 0 ||
		!strings.Contains(out, "rotated request keys: hpke, rsa") {
		t.Fatalf("rotate-keys: exit %d\n%s\n%s", code, out, errOut)
	}
	n2, err := node.New(node.Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- n2.Run(ctx2) }()
	defer func() { cancel2(); <-done2 }()
	doc2, err := n2.Attestation(ctx2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var k1, k2 attest.Keys
	k1.UnmarshalBinary(doc1.Keys)
	k2.UnmarshalBinary(doc2.Keys)
	if bytes.Equal(k1.HPKE, k2.HPKE) || bytes.Equal(k1.RSA, k2.RSA) || !bytes.Equal(k1.Identity, k2.Identity) {
		t.Fatal("rotate-keys must change the request keys and keep the identity")
	}
}

// TestAttestVerifyForgedQuote: an on-path attacker answers GET /attestation
// with a sim quote signed by a fresh platform key, claiming the node's
// measurement. `attest verify` refuses it with the cluster's root, by
// --measurement and by --build (before rebuilding anything).
func TestAttestVerifyForgedQuote(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	root := cfgs[0].SimPlatformKey
	m, err := enclave.MeasureFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	k, _ := enclave.NewKey(enclave.KeyHPKEXWing, rand.Reader)
	kb, _ := (&attest.Keys{HPKEKEM: envelope.KEMXWing, HPKE: k.Public()}).MarshalBinary()
	fb, _ := (&attest.Freshness{Issued: time.Now(), Expires: time.Now().Add(time.Hour)}).MarshalBinary()
	q := enclave.Quote{Platform: enclave.PlatformSim, Simulated: true, Measurement: m, ReportData: attest.ReportData(kb, fb)}
	q.Evidence = append(bytes.Clone(priv.Public().(ed25519.PublicKey)),
		ed25519.Sign(priv, append([]byte("keymesh sim quote v1\x00"), q.SignedBytes()...))...)
	qb, _ := q.MarshalBinary()
	doc, _ := json.Marshal(attest.Document{Keys: kb, Fresh: fb, Quote: qb})
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	defer attacker.Close()

	for _, args := range [][]string{
		{"--measurement", m.String()},
		{"--build", "--checkout", t.TempDir()}, // refused before the (impossible) build
		{},
	} {
		code, out, errOut := runCLI(t, append([]string{"attest", "verify", "--url", attacker.URL, "--allow-simulated", "--platform-key", root}, args...)...)
		if code != 1 || strings.Contains(out, "match") || !strings.Contains(errOut, "not signed by a trusted platform key") || strings.Contains(errOut, "building") {
			t.Fatalf("forged quote %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
}

// TestEnclaveUpgrade builds keymesh twice (the release flags, the second
// with another version stamp, hence another measurement) and runs the
// upgrade path end to end with the real binaries:
//
//   - build 1 runs a node, which seals its identity and request keys;
//     `attest verify --build` rebuilds from this checkout and says match;
//   - build 2 refuses to start on that data dir, naming both measurements;
//   - migrate-out refuses without the approvals of t nodes (approve-release,
//     signed by each node's identity key in build 1's enclave);
//   - migrate-in (build 2) / migrate-out (build 1) hand the secrets over;
//   - build 2 then starts with the same identity and new request keys, and
//     build 1 no longer can.
func TestEnclaveUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := snapshotModule(t, ctx)
	bin := t.TempDir()
	bin1, bin2 := filepath.Join(bin, "keymesh-1"), filepath.Join(bin, "keymesh-2")
	m1, err := enclave.Build(ctx, enclave.BuildConfig{Dir: root, Package: "./cmd/keymesh", Output: bin1})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := enclave.Build(ctx, enclave.BuildConfig{Dir: root, Package: "./cmd/keymesh", Output: bin2,
		LDFlags: []string{"-X github.com/keymesh/keymesh/internal/version.Version=v-next"}})
	if err != nil {
		t.Fatal(err)
	}
	if m1 == m2 {
		t.Fatal("two builds with different version stamps have the same measurement")
	}

	dir := t.TempDir()
	base := porttest.Block(t, 6)
	run := func(exe string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, exe, args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(bin1, "cluster", "init", "--nodes", "2", "--threshold", "2", "--out", dir, "--base-port", fmt.Sprint(base)); err != nil {
		t.Fatalf("cluster init: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, config.FileName(1))
	url := fmt.Sprintf("http://127.0.0.1:%d", base)

	// startNode runs `exe node`; it returns the attestation document once
	// the node serves, or the output if it exited.
	startNode := func(exe string) (*attest.Document, string, func()) {
		t.Helper()
		out := &syncBuffer{}
		cmd := exec.CommandContext(ctx, exe, "node", "--config", cfgPath, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			select {
			case <-exited:
				return nil, out.String(), func() {}
			case <-time.After(100 * time.Millisecond):
			}
			if resp, err := http.Get(url + "/healthz"); err == nil {
				resp.Body.Close()
				doc, err := client.FetchAttestation(ctx, nil, url)
				if err != nil {
					stop()
					t.Fatal(err)
				}
				return doc, out.String(), stop
			}
		}
		stop()
		t.Fatalf("node did not serve:\n%s", out.String())
		return nil, "", nil
	}
	rootHex, err := os.ReadFile(filepath.Join(dir, attest.SimPlatformKeyFile))
	if err != nil {
		t.Fatalf("cluster init wrote no sim platform key: %v", err)
	}
	simRoot := strings.TrimSpace(string(rootHex))
	rootKey, err := attest.ParseSimPlatformKey(simRoot)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(doc *attest.Document, want enclave.Measurement) {
		t.Helper()
		res, err := attest.Verify(doc, attest.Policy{Measurements: []enclave.Measurement{want}, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{rootKey}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Measurement.Equal(want) {
			t.Fatalf("measurement %s, want %s", res.Measurement, want)
		}
	}

	doc1, _, stop := startNode(bin1)
	if doc1 == nil {
		t.Fatal("build 1 did not start")
	}
	verify(doc1, m1)
	code, out, errOut := runCLI(t, "attest", "verify", "--url", url, "--build", "--checkout", root, "--allow-simulated", "--platform-key", simRoot)
	if code != 0 || !strings.Contains(out, "match") || !strings.Contains(out, m1.String()) {
		t.Fatalf("attest verify --build against build 1: exit %d\n%s\n%s", code, out, errOut)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, "node-1", config.IdentityFile)); !os.IsNotExist(err) {
		t.Fatalf("plaintext identity key left after the first start: %v", err)
	}

	// Build 2 refuses, naming both builds.
	if doc, out, _ := startNode(bin2); doc != nil {
		t.Fatal("build 2 started on secrets sealed by build 1")
	} else if !strings.Contains(out, "refusing to start") || !strings.Contains(out, m1.String()) || !strings.Contains(out, m2.String()) {
		t.Fatalf("build 2's refusal does not name both builds:\n%s", out)
	}
	if out, _ := run(bin2, "enclave", "status", "--config", cfgPath); !strings.Contains(out, "sealed by:   "+m1.String()) || !strings.Contains(out, "another build") {
		t.Fatalf("status:\n%s", out)
	}

	// Migrate. A bundle for the wrong target measurement is refused first.
	req, bundle := filepath.Join(dir, "req.bin"), filepath.Join(dir, "bundle.bin")
	inOut := &syncBuffer{}
	in := exec.CommandContext(ctx, bin2, "enclave", "migrate-in", "--config", cfgPath, "--from", m1.String(), "--request", req, "--bundle", bundle, "--timeout", "2m")
	in.Stdout, in.Stderr = inOut, inOut
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := os.Stat(req); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request:\n%s", inOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Release approvals: each node's operator signs with the node's identity
	// key, unsealed by the running build (build 1).
	approval := func(node int, m enclave.Measurement) string {
		t.Helper()
		p := filepath.Join(dir, fmt.Sprintf("approval-%d-%s.json", node, m.String()[:8]))
		if out, err := run(bin1, "enclave", "approve-release", "--config", filepath.Join(dir, config.FileName(uint16(node))), "--measurement", m.String(), "--out", p); err != nil ||
			!strings.Contains(out, "approves measurement "+m.String()) {
			t.Fatalf("approve-release: %v\n%s", err, out)
		}
		return p
	}
	a1, a2 := approval(1, m2), approval(2, m2)
	// The operator of node 1 alone: no approval, or only their own (t = 2).
	if out, err := run(bin1, "enclave", "migrate-out", "--config", cfgPath, "--to", m2.String(), "--request", req, "--bundle", bundle); err == nil || !strings.Contains(out, "--release is required") {
		t.Fatalf("migrate-out without a release authorisation: %v\n%s", err, out)
	}
	if out, err := run(bin1, "enclave", "migrate-out", "--config", cfgPath, "--to", m2.String(), "--request", req, "--bundle", bundle, "--release", a1, "--release", a1); err == nil ||
		!strings.Contains(out, "1 valid approval(s)") {
		t.Fatalf("migrate-out with t-1 approvals: %v\n%s", err, out)
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Fatal("a refused migrate-out wrote a bundle")
	}
	if out, err := run(bin1, "enclave", "migrate-out", "--config", cfgPath, "--to", m1.String(), "--request", req, "--bundle", bundle,
		"--release", approval(1, m1), "--release", approval(2, m1)); err == nil {
		t.Fatalf("migrate-out accepted a request from another measurement than --to:\n%s", out)
	}
	if out, err := run(bin1, "enclave", "migrate-out", "--config", cfgPath, "--to", m2.String(), "--request", req, "--bundle", bundle, "--release", a1, "--release", a2); err != nil {
		t.Fatalf("migrate-out: %v\n%s", err, out)
	}
	if err := in.Wait(); err != nil || !strings.Contains(inOut.String(), "migrated 3 sealed secrets to measurement "+m2.String()) {
		t.Fatalf("migrate-in: %v\n%s", err, inOut.String())
	}

	// Build 2 now runs with the same keys; build 1 no longer can.
	doc2, out2, stop := startNode(bin2)
	if doc2 == nil {
		t.Fatalf("build 2 did not start after the migration:\n%s", out2)
	}
	verify(doc2, m2)
	// The identity moved; the request keys were rotated by the new build.
	var k1, k2 attest.Keys
	if err := k1.UnmarshalBinary(doc1.Keys); err != nil {
		t.Fatal(err)
	}
	if err := k2.UnmarshalBinary(doc2.Keys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.Identity, k2.Identity) || bytes.Equal(k1.HPKE, k2.HPKE) || bytes.Equal(k1.RSA, k2.RSA) {
		t.Fatal("across the migration the identity must stay and the request keys change")
	}
	code, out, _ = runCLI(t, "attest", "verify", "--url", url, "--measurement", m1.String(), "--allow-simulated", "--platform-key", simRoot)
	if code != 1 || !strings.Contains(out, "mismatch") || !strings.Contains(out, m2.String()) {
		t.Fatalf("attest verify against build 2 with build 1's measurement: exit %d\n%s", code, out)
	}
	stop()
	if doc, out, _ := startNode(bin1); doc != nil || !strings.Contains(out, "refusing to start") {
		t.Fatalf("build 1 after the migration: started=%v\n%s", doc != nil, out)
	}
}

// snapshotModule copies the module's files (tracked and untracked, not
// ignored) to a temporary directory, so that every build in a test sees the
// same source even if the working tree changes meanwhile.
func snapshotModule(t *testing.T, ctx context.Context) string {
	t.Helper()
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if list, err := exec.CommandContext(ctx, "git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output(); err == nil {
		names = strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00")
	} else {
		// Not a git checkout (a source archive): every file outside
		// hidden directories.
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != src && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(src, path)
				names = append(names, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "src")
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(src, name))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
