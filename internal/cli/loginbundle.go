package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/auth/web"
)

// newLoginBundleCmd writes the passkey login page (package web) into a
// directory for an app to serve from its own origin, the origin its scope
// lists: a page served by a node lets that node's operator ask the user's
// passkey for assertions (docs/auth.md, "The login page").
func newLoginBundleCmd() *cobra.Command {
	var (
		out, node, clusterDir   string
		platformKeys, measureds []string
	)
	cmd := &cobra.Command{
		Use:   "login-bundle --out DIR [--node URL] [--platform-key HEX | --cluster-dir DIR] [--measurement HEX]",
		Short: "Write the passkey login page for an app to serve from its own origin",
		Long: `Write index.html, login.css and login.js into DIR. --node is the node
JSON-RPC URL the page posts to (named in index.html's
<meta name="keymesh-node">); without it the page posts to / of its own
origin, for an app that forwards that path to a node.

A production node accepts only sealed requests: give the cluster's sim
platform key (--platform-key HEX, or --cluster-dir DIR to read
DIR/sim-platform-key, which keymesh cluster init writes) and the page
verifies the node's attestation against it in the browser and seals every
call to the node's attested key. --measurement pins the node builds the
page accepts (default: any build the platform key signs). The page cannot
verify hardware attestation (Nitro, SEV-SNP, TDX) and refuses such nodes.

Serve the files with the Content-Security-Policy this command prints (its
connect-src names the node's origin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("login-bundle: --out is required")
			}
			roots := append([]string(nil), platformKeys...)
			if clusterDir != "" {
				b, err := os.ReadFile(filepath.Join(clusterDir, attest.SimPlatformKeyFile))
				if err != nil {
					return fmt.Errorf("login-bundle: --cluster-dir: %w", err)
				}
				roots = append(roots, strings.TrimSpace(string(b)))
			}
			for _, r := range roots {
				if _, err := attest.ParseSimPlatformKey(r); err != nil {
					return fmt.Errorf("login-bundle: %w", err)
				}
			}
			o := web.Options{Node: node, SimRoots: roots, Measurements: measureds}
			if err := web.WriteBundleWith(out, o); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "login page written to %s\n", out)
			if len(roots) > 0 {
				fmt.Fprintf(w, "it seals its calls after verifying the node's attestation against platform key %s\n", strings.Join(roots, ", "))
			} else {
				fmt.Fprintln(w, "it sends plain JSON-RPC, which only development nodes accept (give --platform-key or --cluster-dir for production nodes)")
			}
			fmt.Fprintf(w, "serve it with Content-Security-Policy: %s\n", web.CSPFor(node))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write index.html, login.css and login.js into (required)")
	cmd.Flags().StringVar(&node, "node", "", "node JSON-RPC URL the page posts to (default: / of the page's origin)")
	cmd.Flags().StringSliceVar(&platformKeys, "platform-key", nil, "the cluster's sim platform key (hex) the node's attestation must be signed by; the page then seals its calls")
	cmd.Flags().StringVar(&clusterDir, "cluster-dir", "", "read the platform key from DIR/"+attest.SimPlatformKeyFile+" (the directory keymesh cluster init wrote)")
	cmd.Flags().StringSliceVar(&measureds, "measurement", nil, "node build (hex measurement) the page accepts; repeat for several (default: any)")
	return cmd
}
