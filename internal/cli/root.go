// Package cli implements the keymesh command line, one file per
// subcommand. cmd/keymesh only calls Main.
//
// Commands write their results to stdout and diagnostics to stderr; the
// node's structured logs go to stderr (JSON for `keymesh node`, text for
// `keymesh dev`).
package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line with args (without the program name) and
// returns the process exit code. It stops on SIGINT or SIGTERM by
// cancelling the context the commands run under.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main under a context the caller controls (tests cancel it instead
// of sending a signal).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "keymesh:", err)
		return 1
	}
	return 0
}

// NewRoot builds the command tree. Every subcommand is added here
// explicitly.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "keymesh",
		Short:         "keymesh: threshold wallets and private data held by a network of nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newNodeCmd(),
		newClusterCmd(),
		newDevCmd(),
		newVersionCmd(),
		newAttestCmd(), newEnclaveCmd(),
		newAccountCmd(), newSignCmd(), newBenchCmd(),
		newScopeCmd(),
		newAuditCmd(),
		newLoginBundleCmd(),
	)
	return root
}
