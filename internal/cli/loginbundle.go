package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/auth/web"
)

// newLoginBundleCmd writes the passkey login page (package web) into a
// directory for an app to serve from its own origin, the origin its scope
// lists: a page served by a node lets that node's operator ask the user's
// passkey for assertions (docs/auth.md, "The login page").
func newLoginBundleCmd() *cobra.Command {
	var out, node string
	cmd := &cobra.Command{
		Use:   "login-bundle --out DIR [--node URL]",
		Short: "Write the passkey login page for an app to serve from its own origin",
		Long: `Write index.html, login.css and login.js into DIR. --node is the node
JSON-RPC URL the page posts to (named in index.html's
<meta name="keymesh-node">); without it the page posts to / of its own
origin, for an app that forwards that path to a node. Serve the files with
the page's Content-Security-Policy (docs/auth.md), adding the node's origin
to connect-src when it is another origin.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("login-bundle: --out is required")
			}
			if err := web.WriteBundle(out, node); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "login page written to %s\nserve it with Content-Security-Policy: %s\n", out, web.CSP)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write index.html, login.css and login.js into (required)")
	cmd.Flags().StringVar(&node, "node", "", "node JSON-RPC URL the page posts to (default: / of the page's origin)")
	return cmd
}
