package sim

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/enclave"
)

// TestTwoBinaries builds testdata/simnode three times: twice from the same
// source and flags (reproducible: same measurement) and once with a different
// -X main.build (another measurement). A secret sealed by the first binary
// does not unseal in the other build, until the migration protocol moves it.
func TestTwoBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	build := func(name, version string) (string, enclave.Measurement) {
		out := filepath.Join(tmp, name)
		m, err := enclave.Build(ctx, enclave.BuildConfig{
			Dir: root, Package: "./internal/enclave/sim/testdata/simnode", Output: out,
			LDFlags: []string{"-X main.build=" + version},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, m
	}
	binA, mA := build("a", "1")
	_, mA2 := build("a2", "1")
	binB, mB := build("b", "2")
	if mA != mA2 {
		t.Fatalf("two builds of the same source differ: %s vs %s", mA, mA2)
	}
	if mA == mB {
		t.Fatal("builds with different versions have the same measurement")
	}
	// BuildMeasurement (what `keymesh attest verify --build` calls) predicts
	// what the binary reports about itself.
	dir := t.TempDir()
	if out := run(t, binA, "", "-dir", dir, "measure"); !strings.HasPrefix(out, mA.String()+" 1") {
		t.Fatalf("binary A reports %q, built measurement %s", out, mA)
	}

	secret := "dkls23 share record"
	sealed := run(t, binA, secret, "-dir", dir, "-label", "share/1", "seal")
	if got := run(t, binA, sealed, "-dir", dir, "-label", "share/1", "unseal"); got != secret {
		t.Fatalf("A unseals %q", got)
	}
	// B refuses, naming both measurements.
	out, err := runErr(binB, sealed, "-dir", dir, "-label", "share/1", "unseal")
	if err == nil {
		t.Fatalf("binary B unsealed A's secret: %q", out)
	}
	if !strings.Contains(out, "sealed by a build with measurement "+mA.String()) || !strings.Contains(out, mB.String()) {
		t.Fatalf("B's error does not name both measurements: %s", out)
	}

	// Upgrade: B (target) asks, A (source) exports, B imports and reseals.
	cmd := exec.CommandContext(ctx, binB, "-dir", dir, "-label", "share/1", "-peer", mA.String(), "migrate-in")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	req, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("migrate-in: %v %s", err, stderr.String())
	}
	reqFile := filepath.Join(tmp, "req")
	os.WriteFile(reqFile, []byte(req), 0o600)
	bundle := run(t, binA, sealed, "-dir", dir, "-label", "share/1", "-peer", mB.String(), "-req", reqFile, "migrate-out")
	stdin.Write([]byte(bundle + "\n"))
	stdin.Close()
	resealedHex, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("migrate-in: %v %s", err, stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("migrate-in: %v %s", err, stderr.String())
	}
	resealed := strings.TrimSpace(resealedHex)
	if got := run(t, binB, resealed, "-dir", dir, "-label", "share/1", "unseal"); got != secret {
		t.Fatalf("B unseals the migrated secret as %q", got)
	}
	if out, err := runErr(binA, resealed, "-dir", dir, "-label", "share/1", "unseal"); err == nil {
		t.Fatalf("A unsealed B's secret: %q", out)
	}
}

func run(t *testing.T, bin, stdin string, args ...string) string {
	t.Helper()
	out, err := runErr(bin, stdin, args...)
	if err != nil {
		t.Fatalf("%s %v: %v: %s", filepath.Base(bin), args, err, out)
	}
	return strings.TrimSuffix(out, "\n")
}

func runErr(bin, stdin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}
