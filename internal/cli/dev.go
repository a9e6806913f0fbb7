package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
)

// devReadyTimeout bounds how long keymesh dev waits for its nodes to reach
// each other.
const devReadyTimeout = 30 * time.Second

func newDevCmd() *cobra.Command {
	var (
		dir      string
		basePort int
		level    string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a 3-node threshold-2 cluster on 127.0.0.1 in this process",
		Long: `Run a development cluster: 3 nodes, any 2 of which can sign, all in
this process, each with its own SQLite store, listening on 127.0.0.1.
The first run creates the cluster in --dir; later runs reuse it (same
identities, same data, same ports). Stop with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return err
			}
			return runDev(cmd.Context(), cmd, dir, basePort, lv, cmd.Flags().Changed("base-port"))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".keymesh/dev", "cluster directory (created on first run)")
	cmd.Flags().IntVar(&basePort, "base-port", config.DefaultBasePort, "first port, on first run (node i: API base+2(i-1), peers +1)")
	cmd.Flags().StringVar(&level, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	return cmd
}

func runDev(ctx context.Context, cmd *cobra.Command, dir string, basePort int, level slog.Level, portSet bool) error {
	out := cmd.OutOrStdout()
	cfgs, created, err := node.LoadOrInitDev(dir, basePort)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "keymesh dev: created cluster %s in %s\n", cfgs[0].ClusterID, dir)
	} else {
		fmt.Fprintf(out, "keymesh dev: reusing cluster %s in %s\n", cfgs[0].ClusterID, dir)
		if portSet && cfgs[0].APIListen != fmt.Sprintf("127.0.0.1:%d", basePort) {
			fmt.Fprintf(out, "keymesh dev: --base-port ignored: the cluster's ports are fixed in its config (remove %s to start over)\n", dir)
		}
	}
	base := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	var nodes []*node.Node
	for _, c := range cfgs {
		// The metrics are never on the API port: each dev node serves them
		// on a loopback port of its own, printed below (bench --metrics-url).
		var mln net.Listener
		if c.MetricsListen == "" {
			if mln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				for _, m := range nodes {
					m.Close()
				}
				return err
			}
		}
		n, err := node.New(node.Options{Config: c, Logger: base, AllowPlaintext: true, MetricsListener: mln})
		if err != nil {
			for _, m := range nodes {
				m.Close()
			}
			return err
		}
		nodes = append(nodes, n)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- node.RunAll(runCtx, nodes) }()

	if stopped, err := waitReady(ctx, nodes, done); err != nil || stopped {
		cancel()
		if !stopped {
			err = errors.Join(err, <-done)
		}
		return err
	}
	for i, n := range nodes {
		fmt.Fprintf(out, "node %d: %s (peer %s, data %s, metrics %s/metrics)\n", n.ID(), n.APIURL(), cfgs[i].PeerListen, cfgs[i].DataDir, n.MetricsURL())
	}
	e := nodes[0].Enclave()
	fmt.Fprintf(out, "keymesh dev: enclave %s (simulated: %v), measurement %s; plaintext requests accepted (dev), sealed ones too (GET /attestation)\n",
		e.Platform(), e.Simulated(), e.Measurement())
	if root := cfgs[0].SimPlatformKey; root != "" {
		fmt.Fprintf(out, "keymesh dev: sim platform key %s (in %s): clients pin it to verify the quotes (--platform-key; account create --dev-setup --dev-dir %s writes it to the credentials file)\n",
			root, filepath.Join(dir, attest.SimPlatformKeyFile), dir)
	} else {
		fmt.Fprintf(out, "keymesh dev: this cluster has no shared sim platform key (it was created by an older keymesh), so sealed clients cannot verify its quotes: remove %s to start over\n", dir)
	}
	host := strings.TrimPrefix(nodes[0].APIURL(), "http://")
	fmt.Fprintf(out, "keymesh dev: %d nodes ready (threshold %d) — try: curl -s -H 'Content-Type: application/json' %s -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"keymesh_nodeInfo\"}'\n",
		len(nodes), cfgs[0].Threshold, host)

	err = <-done
	fmt.Fprintln(out, "keymesh dev: stopped")
	return err
}

// waitReady waits until every node reaches every peer, the cluster stops
// (stopped: done was read), ctx ends (a clean stop: Ctrl-C during startup),
// or devReadyTimeout passes.
func waitReady(ctx context.Context, nodes []*node.Node, done <-chan error) (stopped bool, err error) {
	deadline := time.NewTimer(devReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		for _, n := range nodes {
			if st := n.Ready(); len(st.Down) > 0 {
				all = false
			}
		}
		if all {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return true, <-done
		case err := <-done:
			if err == nil {
				err = errors.New("nodes stopped before they were ready")
			}
			return true, err
		case <-deadline.C:
			return false, fmt.Errorf("the nodes did not reach each other within %v", devReadyTimeout)
		case <-tick.C:
		}
	}
}
