package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
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
		c             creds // the connection flags every node command takes
		checkout, pkg string
		build         bool
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
refused unless --allow-simulated is given. They are verified against the
cluster's sim platform key, never against the key a quote names itself
(anyone can make one): give it with --platform-key (keymesh cluster init
prints it and writes it to sim-platform-key in the cluster directory), or
--creds, a credentials file whose platformKeys hold it.

The node's request key must use X-Wing unless --min-kem x25519 is given.

The command sends a fresh random challenge and accepts only a document the
node quoted for it, within its validity: a recorded attestation cannot be
replayed. With --node-identity (the node's identity_key from the cluster
config, which cluster init prints; or the credentials file's nodeIdentity),
a document from another node is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			if c.url == "" && c.file == "" {
				return errors.New("--url is required (or --creds naming the node)")
			}
			if err := c.load(); err != nil {
				return err
			}
			url, measurements, allowSim, minKEM := c.loaded.URL, c.measurements, c.allowSim, c.minKEM
			if build && len(measurements) > 0 {
				return errors.New("--build and --measurement exclude each other")
			}
			// Bad flags are refused before anything is fetched.
			for _, h := range measurements {
				if _, err := enclave.ParseMeasurement(h); err != nil {
					return fmt.Errorf("--measurement %q: %w", h, err)
				}
			}
			out := cmd.OutOrStdout()
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			p := attest.Policy{AllowSimulated: allowSim}
			switch minKEM {
			case "x-wing":
				p.MinKEM = envelope.KEMXWing
			case "x25519":
				p.MinKEM = envelope.KEMX25519
			default:
				return fmt.Errorf("--min-kem %q: want x-wing or x25519", minKEM)
			}
			keys := c.platformKeys
			if len(keys) == 0 {
				keys = c.loaded.PlatformKeys
			}
			for _, h := range keys {
				k, err := attest.ParseSimPlatformKey(h)
				if err != nil {
					return fmt.Errorf("--platform-key %q: %w", h, err)
				}
				p.SimPlatformKeys = append(p.SimPlatformKeys, k)
			}
			nodeIdentity := c.nodeIdentity
			if nodeIdentity == "" {
				nodeIdentity = c.loaded.NodeIdentity
			}
			if nodeIdentity != "" {
				k, err := client.ParseNodeIdentity(nodeIdentity)
				if err != nil {
					return err
				}
				p.NodeIdentity = k
			}
			p.Challenge = make([]byte, 32)
			if _, err := rand.Read(p.Challenge); err != nil {
				return err
			}
			source := ""
			doc, err := client.FetchAttestationFor(ctx, &http.Client{Timeout: 30 * time.Second}, url, p.Challenge)
			if err != nil {
				return err
			}
			p.Now = time.Now()
			// Everything but the measurement first (evidence against the
			// pinned roots, the KEM, the key binding), so that a forged or
			// unverifiable quote is refused before any rebuild.
			pre := p
			pre.TrustOnFirstUse = true
			if _, err := attest.Verify(doc, pre); err != nil {
				return err
			}
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
			fmt.Fprintf(out, "node:        %s\nidentity:    %s\nplatform:    %s (%s)\nmeasurement: %s\nattested:    %s, for this command's challenge, valid until %s\n",
				url, base64.StdEncoding.EncodeToString(res.Keys.Identity), res.Platform, kind, res.Measurement,
				res.Fresh.Issued.UTC().Format(time.RFC3339), res.Fresh.Expires.UTC().Format(time.RFC3339))
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
	f.BoolVar(&build, "build", false, "rebuild keymesh from --checkout and compare its measurement")
	f.StringVar(&checkout, "checkout", ".", "source checkout to rebuild (with --build)")
	f.StringVar(&pkg, "package", "./cmd/keymesh", "package to rebuild (with --build)")
	// --url, --measurement (the expected builds), --allow-simulated,
	// --platform-key, --creds (its platformKeys and nodeIdentity),
	// --min-kem, --node-identity, --timeout; the account and sealing flags
	// are accepted and unused.
	c.flags(f, false)
	return cmd
}
