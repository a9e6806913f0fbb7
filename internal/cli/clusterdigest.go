package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/config"
)

// newClusterDigestCmd prints node configs' cluster policy digests
// (config.PolicyDigest), the value peers compare when they link.
func newClusterDigestCmd() *cobra.Command {
	var (
		files []string
		show  bool
	)
	cmd := &cobra.Command{
		Use:   "digest --config FILE [--config FILE ...]",
		Short: "Print the cluster policy digest of node configs, and compare them",
		Long: `Print the cluster policy digest of each node config: a hash of the
policy every node of a cluster must hold alike (` + config.PolicyFields + `).
Nodes compare their digests when they link and refuse a peer whose digest
differs ("cluster policy mismatch" in keymesh_nodeInfo and the logs).

One line per file: "<digest>  <file>". Given several files, it names the
fields in which each differs from the first and fails if any does.
--show also prints each file's policy as the digest sees it (node_hosts
lower-cased and sorted, counted only in production; a missing admission
is "open"), to compare by eye or with diff.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("--config is required")
			}
			out := cmd.OutOrStdout()
			var first config.Policy
			differ := 0
			for i, f := range files {
				n, err := config.Load(f)
				if err != nil {
					return err
				}
				p := n.Policy()
				fmt.Fprintf(out, "%s  %s\n", p.Digest(), f)
				if show {
					b, err := json.MarshalIndent(p, "", "  ")
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s\n", b)
				}
				if i == 0 {
					first = p
					continue
				}
				if d := first.Diff(p); len(d) > 0 {
					differ++
					fmt.Fprintf(out, "%s differs from %s in: %s\n", f, files[0], strings.Join(d, ", "))
				}
			}
			if differ > 0 {
				return fmt.Errorf("%d of %d configs differ from %s in cluster policy: their nodes refuse each other", differ, len(files)-1, files[0])
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&files, "config", nil, "node config file (node-<id>.json); repeatable")
	cmd.Flags().BoolVar(&show, "show", false, "also print each config's policy as JSON")
	return cmd
}
