package cli

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
)

func newAttestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Check a node's enclave attestation",
	}
	cmd.AddCommand(newAttestVerifyCmd())
	return cmd
}

// errMismatch makes the command exit 1 after it printed "mismatch".
var errMismatch = errors.New("the node does not run the expected build")

func newAttestVerifyCmd() *cobra.Command {
	var (
		url, checkout, pkg string
		build, allowSim    bool
		measurements       []string
	)
	cmd := &cobra.Command{
		Use:   "verify --url NODE [--build | --measurement HEX]",
		Short: "Verify a node's quote and compare its measurement with a build",
		Long: `Fetch GET /attestation from the node, verify the quote and that it
covers the node's keys, and compare the measurement it reports with the
expected one: --measurement HEX (repeatable), or --build, which rebuilds
keymesh reproducibly from the checkout (go build -trimpath -buildvcs=false
-ldflags=-buildid=, CGO_ENABLED=0) and measures the binary. Prints "match"
or "mismatch" with both values; exits 1 on a mismatch or a bad quote.

Quotes of the simulated enclave backend prove nothing about hardware and are
refused unless --allow-simulated is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return errors.New("--url is required")
			}
			if build && len(measurements) > 0 {
				return errors.New("--build and --measurement exclude each other")
			}
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			p := attest.Policy{AllowSimulated: allowSim}
			source := ""
			switch {
			case build:
				fmt.Fprintf(cmd.ErrOrStderr(), "building %s in %s reproducibly…\n", pkg, checkout)
				m, err := enclave.BuildMeasurement(ctx, checkout, pkg)
				if err != nil {
					return err
				}
				p.Measurements = []enclave.Measurement{m}
				source = "rebuilt from " + checkout
			case len(measurements) > 0:
				for _, h := range measurements {
					m, err := enclave.ParseMeasurement(h)
					if err != nil {
						return fmt.Errorf("--measurement %q: %w", h, err)
					}
					p.Measurements = append(p.Measurements, m)
				}
				source = "--measurement"
			default:
				p.TrustOnFirstUse = true
			}
			doc, err := client.FetchAttestation(ctx, &http.Client{Timeout: 30 * time.Second}, url)
			if err != nil {
				return err
			}
			res, err := attest.Verify(doc, p)
			var me *attest.MeasurementError
			if errors.As(err, &me) {
				fmt.Fprintf(out, "mismatch: node %s reports measurement %s\n", url, me.Got)
				for _, m := range me.Pinned {
					fmt.Fprintf(out, "  expected %s (%s)\n", m, source)
				}
				return errMismatch
			}
			if err != nil {
				return err
			}
			kind := "hardware"
			if res.Simulated {
				kind = "simulated"
			}
			fmt.Fprintf(out, "node:        %s\nplatform:    %s (%s)\nmeasurement: %s\n", url, res.Platform, kind, res.Measurement)
			for _, w := range res.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if res.FirstUse {
				fmt.Fprintln(out, "not compared: give --build or --measurement to check the build")
				return nil
			}
			fmt.Fprintf(out, "match: the node runs the expected build (%s)\n", source)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "node API base URL, e.g. http://127.0.0.1:7100")
	f.BoolVar(&build, "build", false, "rebuild keymesh from --checkout and compare its measurement")
	f.StringVar(&checkout, "checkout", ".", "source checkout to rebuild (with --build)")
	f.StringVar(&pkg, "package", "./cmd/keymesh", "package to rebuild (with --build)")
	f.StringArrayVar(&measurements, "measurement", nil, "expected measurement, 64 hex digits (repeatable)")
	f.BoolVar(&allowSim, "allow-simulated", false, "accept quotes of the simulated enclave backend")
	return cmd
}
