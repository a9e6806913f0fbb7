package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/node"
)

func newEnclaveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enclave",
		Short: "Inspect the enclave and migrate sealed secrets to a new build",
		Long: `A node's secrets at rest (identity key, request keys, wallet shares) are
sealed to the measurement of the binary that runs it, so a new binary cannot
read them and refuses to start. To upgrade, stop the node and hand the
secrets over between the two builds (docs/enclave.md, "Upgrades"):

  each node, t of n: keymesh enclave approve-release --config node-K.json --measurement NEW --out approval-K.json
  new$ keymesh enclave migrate-in  --config node-1.json --from OLD --request req.bin --bundle bundle.bin
  old$ keymesh enclave migrate-out --config node-1.json --to NEW   --request req.bin --bundle bundle.bin \
         --release approval-1.json --release approval-2.json

migrate-in writes the request and waits for the bundle; both sides check the
other's quote against the measurement given, and migrate-out hands the
secrets only to a build that t of the cluster's n nodes approved (each
approval is signed by that node's identity key, unsealed by its enclave). The new build makes new request
keys (the keys clients seal to); the identity key and wallet shares move.

rotate-keys replaces a stopped node's request keys with fresh ones.`,
	}
	cmd.AddCommand(newEnclaveMeasurementCmd(), newEnclaveStatusCmd(), newEnclaveMigrateInCmd(), newEnclaveMigrateOutCmd(), newEnclaveRotateKeysCmd(), newEnclaveApproveReleaseCmd())
	return cmd
}

func newEnclaveMeasurementCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "measurement",
		Short: "Print this binary's enclave measurement",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			m, err := enclave.MeasureFile(exe)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), m)
			return nil
		},
	}
}

func loadNodeConfig(cfgPath string) (*config.Node, error) {
	if cfgPath == "" {
		return nil, errors.New("--config is required")
	}
	return config.Load(cfgPath)
}

func newEnclaveStatusCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Say which build sealed a node's secrets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			b, err := node.OpenEnclave(cfg.DataDir)
			if err != nil {
				return err
			}
			defer b.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "this binary: %s\n", b.Measurement())
			m, ok, err := node.SealedBy(cfg.DataDir)
			switch {
			case err != nil:
				return err
			case !ok:
				fmt.Fprintln(out, "sealed by:   nothing yet (the node seals its identity key on first start)")
			case m.Equal(b.Measurement()):
				fmt.Fprintf(out, "sealed by:   %s\nok: this binary can start the node\n", m)
			default:
				fmt.Fprintf(out, "sealed by:   %s\nanother build sealed the secrets: migrate them (keymesh enclave --help)\n", m)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "node config file")
	return cmd
}

func newEnclaveMigrateInCmd() *cobra.Command {
	var (
		cfgPath, from, reqPath, bundlePath string
		timeout                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "migrate-in --config FILE --from OLD --request FILE --bundle FILE",
		Short: "Receive a node's sealed secrets from the old build (run with the new binary)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			old, err := enclave.ParseMeasurement(from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if reqPath == "" || bundlePath == "" {
				return errors.New("--request and --bundle are required")
			}
			if _, err := os.Stat(bundlePath); err == nil {
				return fmt.Errorf("%s already exists: remove it (a bundle is made for one request)", bundlePath)
			}
			m, req, err := node.StartMigrateIn(cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			if err := writeFileAtomic(reqPath, req); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "request written to %s; now run the old binary, with the approvals of %s by %d of the cluster's nodes (keymesh enclave approve-release):\n  keymesh enclave migrate-out --config %s --to %s --request %s --bundle %s --release APPROVAL...\n",
				reqPath, m.Measurement(), cfg.Threshold, cfgPath, m.Measurement(), reqPath, bundlePath)
			ctx := cmd.Context()
			deadline := time.Now().Add(timeout)
			var bundle []byte
			for {
				bundle, err = os.ReadFile(bundlePath)
				if err == nil {
					break
				}
				if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("no bundle at %s within %v", bundlePath, timeout)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			n, err := m.Finish(ctx, bundle, old)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "migrated %d sealed secrets to measurement %s\n", n, m.Measurement())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "node config file")
	f.StringVar(&from, "from", "", "measurement of the old build (keymesh enclave status)")
	f.StringVar(&reqPath, "request", "", "file to write the request to")
	f.StringVar(&bundlePath, "bundle", "", "file the old build writes the bundle to")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the bundle")
	return cmd
}

func newEnclaveMigrateOutCmd() *cobra.Command {
	var (
		cfgPath, to, reqPath, bundlePath string
		releases                         []string
	)
	cmd := &cobra.Command{
		Use:   "migrate-out --config FILE --to NEW --request FILE --bundle FILE --release FILE...",
		Short: "Hand a node's sealed secrets to the new build (run with the old binary)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			newM, err := enclave.ParseMeasurement(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if reqPath == "" || bundlePath == "" {
				return errors.New("--request and --bundle are required")
			}
			if len(releases) == 0 {
				return fmt.Errorf("--release is required: migrate-out hands the secrets only to a build that %d of the cluster's nodes approved (keymesh enclave approve-release on each)", cfg.Threshold)
			}
			approvals, err := readApprovals(releases)
			if err != nil {
				return err
			}
			req, err := os.ReadFile(reqPath)
			if err != nil {
				return err
			}
			bundle, n, err := node.MigrateOut(cmd.Context(), cfg, req, newM, approvals)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(bundlePath, bundle); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle of %d sealed secrets for measurement %s written to %s\n", n, newM, bundlePath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "node config file")
	f.StringVar(&to, "to", "", "measurement of the new build (printed by migrate-in)")
	f.StringVar(&reqPath, "request", "", "request file written by migrate-in")
	f.StringVar(&bundlePath, "bundle", "", "file to write the bundle to")
	f.StringSliceVar(&releases, "release", nil, "approval file of --to by a node of the cluster (keymesh enclave approve-release); repeat: t distinct nodes are needed")
	return cmd
}

// readApprovals reads release approval files (attest.Approval).
func readApprovals(paths []string) ([]*attest.Approval, error) {
	var out []*attest.Approval
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("release approval: %w", err)
		}
		a, err := attest.ParseApproval(b)
		if err != nil {
			return nil, fmt.Errorf("release approval %s: %w", p, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func newEnclaveApproveReleaseCmd() *cobra.Command {
	var (
		cfgPath, outPath string
		measurements     []string
		validity         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "approve-release --config FILE --measurement NEW --out FILE",
		Short: "Approve a new build for the cluster, signed with this node's identity key",
		Long: `Sign a release approval of build measurement NEW for the node's cluster
with the node's identity key, which this binary unseals in the node's
enclave (run it with the binary that runs the node). Each node's operator
runs it for their own node; migrate-out needs the approvals of t distinct
nodes (the cluster threshold) before it hands a node's secrets to NEW, and
clients that pinned the old build accept NEW with them (--release).

Check NEW first: rebuild the release from its tagged source and compare
(keymesh attest verify --build, or enclave measurement on the new binary).
The approval says: cluster id, platform, measurement, issued and expiry
times (docs/enclave.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			if len(measurements) != 1 {
				return errors.New("--measurement: give the one build to approve")
			}
			m, err := enclave.ParseMeasurement(measurements[0])
			if err != nil {
				return fmt.Errorf("--measurement: %w", err)
			}
			if outPath == "" {
				return errors.New("--out is required")
			}
			a, err := node.ApproveRelease(cfg, m, validity, time.Now())
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(a, "", "  ")
			if err != nil {
				return err
			}
			if err := writeFileAtomic(outPath, append(b, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %d (identity %s) approves measurement %s for cluster %s until %s: written to %s\n",
				cfg.ID, base64.StdEncoding.EncodeToString(a.Identity), m, cfg.ClusterID, time.Now().Add(validity).UTC().Format(time.RFC3339), outPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "node config file")
	measurementFlag(f, &measurements, "measurement of the build to approve (exactly one)")
	f.StringVar(&outPath, "out", "", "file to write the approval to")
	f.DurationVar(&validity, "valid-for", attest.DefaultReleaseValidity, "how long the approval stays valid (at most 90 days)")
	return cmd
}

func newEnclaveRotateKeysCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "rotate-keys --config FILE",
		Short: "Replace a stopped node's request keys with fresh ones",
		Long: `Replace the node's request keys (HPKE and the compatibility RSA key,
sealed in its store) with fresh ones made in this build's enclave, in one
transaction. Stop the node first. When it starts again it attests the new
keys; a request sealed to an old key is refused (error -32051, unsealed), and
clients verify the new attestation (the Go SDK does so when its attestation
expires, or on Client.Attest). Rotate after a build that may have exposed a
key, or on a schedule (docs/enclave.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			rotated, err := node.RotateRequestKeys(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(rotated) == 0 {
				fmt.Fprintln(out, "no request keys yet: the node makes them on its first start")
				return nil
			}
			fmt.Fprintf(out, "rotated request keys: %s\nstart the node; requests sealed to the old keys are refused\n", strings.Join(rotated, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "node config file")
	return cmd
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that a reader polling for path never sees half of it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".keymesh-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
