package cli

import (
	"errors"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
)

func newNodeCmd() *cobra.Command {
	var (
		cfgPath, level string
		allowPlaintext bool
	)
	cmd := &cobra.Command{
		Use:   "node --config FILE",
		Short: "Run one node of a cluster",
		Long: `Run one node of a cluster from its config file (written by
keymesh cluster init). The node's data dir must hold its identity key.
It serves the JSON-RPC API and the peer transport until SIGINT or SIGTERM,
then shuts down gracefully. Logs are JSON lines on stderr.

On its first start the node seals its identity key to its enclave and
removes the plaintext key. It serves only JSON-RPC requests sealed to its
attested keys (GET /attestation) unless --allow-plaintext (or
"allow_plaintext": true in the config) is given, for development.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return errors.New("--config is required")
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return err
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lv}))
			n, err := node.New(node.Options{Config: cfg, Logger: logger, AllowPlaintext: allowPlaintext})
			if err != nil {
				return err
			}
			return n.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "node config file (node-<id>.json)")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().BoolVar(&allowPlaintext, "allow-plaintext", false, "also accept unsealed JSON-RPC requests (development only)")
	return cmd
}
