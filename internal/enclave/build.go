package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ReproducibleBuildFlags are the go build flags of a release build. Two
// builds of the same source with the same Go toolchain, GOOS/GOARCH and these
// flags produce byte-identical binaries, hence the same sim measurement.
// Release scripts must use exactly these (see docs/enclave.md).
var ReproducibleBuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// BuildConfig describes a reproducible build.
type BuildConfig struct {
	Dir     string   // module checkout to build in
	Package string   // package to build, e.g. "./cmd/keymesh"
	Output  string   // binary path; a temporary file (removed afterwards) if empty
	GoCmd   string   // go command; "go" if empty
	LDFlags []string // extra -ldflags entries (e.g. "-X main.version=1.2"), appended to -buildid=
	Env     []string // extra environment (e.g. GOOS=linux); CGO_ENABLED=0 is always set
}

// Build runs a reproducible go build and returns the SHA-256 of the binary:
// the measurement the sim backend reports when that binary runs. The
// command's output is included in the error if the build fails.
func Build(ctx context.Context, c BuildConfig) (Measurement, error) {
	var m Measurement
	goCmd := c.GoCmd
	if goCmd == "" {
		goCmd = "go"
	}
	out := c.Output
	if out == "" {
		dir, err := os.MkdirTemp("", "keymesh-build-")
		if err != nil {
			return m, fmt.Errorf("enclave: build: %w", err)
		}
		defer os.RemoveAll(dir)
		out = filepath.Join(dir, "bin")
	}
	ldflags := "-ldflags=" + strings.Join(append([]string{"-buildid="}, c.LDFlags...), " ")
	args := []string{"build", "-trimpath", "-buildvcs=false", ldflags, "-o", out, c.Package}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), c.Env...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return m, fmt.Errorf("enclave: go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return MeasureFile(out)
}

// BuildMeasurement rebuilds pkg in the checkout dir with the release flags and
// returns the measurement the resulting binary would report. `keymesh attest
// verify --build` compares it with a node's quote.
func BuildMeasurement(ctx context.Context, dir, pkg string) (Measurement, error) {
	return Build(ctx, BuildConfig{Dir: dir, Package: pkg})
}

// MeasureFile returns SHA-256 of the file at path: the sim measurement of an
// executable.
func MeasureFile(path string) (Measurement, error) {
	var m Measurement
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("enclave: measure: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return m, fmt.Errorf("enclave: measure %s: %w", path, err)
	}
	h.Sum(m[:0])
	return m, nil
}
