package cli

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Create and inspect cluster configurations",
	}
	cmd.AddCommand(newClusterInitCmd(), newClusterDigestCmd())
	return cmd
}

func newClusterInitCmd() *cobra.Command {
	var (
		opts    config.InitOptions
		hosts   []string
		approve []string // developer keys admitted to create scopes
	)
	cmd := &cobra.Command{
		Use:   "init --nodes N --threshold T --out DIR",
		Short: "Create a cluster: a config file and an identity key per node",
		Long: `Create a cluster of N nodes, any T of which can sign, in DIR:
DIR/node-<id>.json (the node's config, no secrets) and DIR/node-<id>/
(its data dir, holding identity.key, mode 0600, and the simulated enclave
platform in enclave-sim/).

Every node of the cluster gets the same sim platform key (each keeps its
own seal secret). Its public half is the root clients pin to verify the
nodes' quotes: it is printed, and written to DIR/sim-platform-key for the
operator to hand to clients (keymesh ... --platform-key HEX, "platformKeys"
in a credentials file, client.Attestation.SimPlatformKeys). Whoever holds
a node's enclave-sim/platform file can sign quotes under that root: the
sim trusts the operator.

--host may be given once (every node on that host) or once per node in id
order (node 1 on the first host, ...); each node listens on and is reached
at host:port. Node i uses ports base+2(i-1) (API) and base+2(i-1)+1 (peers).
With one host the ports are checked to be free on this machine; with one
host per node they are not (they are on other machines).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Out == "" {
				return errors.New("--out is required")
			}
			switch len(hosts) {
			case 0:
			case 1:
				opts.Host = hosts[0]
			default:
				if len(hosts) != opts.Nodes {
					return fmt.Errorf("%d --host values for %d nodes: give one, or one per node", len(hosts), opts.Nodes)
				}
				opts.Host = hosts[0]
				opts.SkipPortCheck = true
			}
			if len(approve) > 0 {
				opts.Admission = &config.Admission{Policy: config.AdmissionApproved, DeveloperKeys: approve}
			}
			nodes, err := config.InitCluster(opts)
			if err != nil {
				return err
			}
			if len(hosts) > 1 {
				if err := spreadHosts(nodes, hosts); err != nil {
					return err
				}
			}
			if err := config.WriteCluster(opts.Out, nodes); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cluster %s: %d nodes, threshold %d, in %s\n", nodes[0].ClusterID, len(nodes), nodes[0].Threshold, opts.Out)
			for _, n := range nodes {
				pub := ""
				for _, m := range nodes {
					if p, ok := m.Peer(n.ID); ok {
						pub = p.IdentityKey
						break
					}
				}
				fmt.Fprintf(out, "node %d: config %s, data %s, api %s, peer %s, identity %s\n",
					n.ID, filepath.Join(opts.Out, config.FileName(n.ID)), n.DataDir, n.APIListen, n.PeerListen, pub)
			}
			fmt.Fprintf(out, "sim platform key (the root clients pin; also in %s): %s\n",
				filepath.Join(opts.Out, attest.SimPlatformKeyFile), nodes[0].SimPlatformKey)
			fmt.Fprintf(out, "clients: --platform-key %s (or \"platformKeys\" in a credentials file)\n", nodes[0].SimPlatformKey)
			fmt.Fprintf(out, "cluster roster (for clients to check release approvals of a new build: --cluster): %s\n", filepath.Join(opts.Out, config.RosterFile))
			fmt.Fprintf(out, "cluster policy digest (every node must show the same: keymesh cluster digest): %s\n", nodes[0].PolicyDigest())
			fmt.Fprintf(out, "start each node with: keymesh node --config %s\n", filepath.Join(opts.Out, "node-<id>.json"))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Nodes, "nodes", 3, "number of nodes n")
	f.IntVar(&opts.Threshold, "threshold", 2, "signing threshold t (2 ≤ t ≤ n)")
	f.StringVar(&opts.Out, "out", "", "directory to create (must not exist or be empty)")
	f.StringArrayVar(&hosts, "host", nil, "host every node runs on, or one per node in id order (default 127.0.0.1)")
	f.IntVar(&opts.BasePort, "base-port", config.DefaultBasePort, "first port")
	f.StringVar(&opts.ClusterID, "cluster-id", "", "cluster id (default: random km-…)")
	f.StringArrayVar(&approve, "approve-developer-key", nil, "admit only scopes created by these developer keys (p256:… or ed25519:…, repeatable; written to every node's admission; default: anyone may create scopes)")
	f.BoolVar(&opts.Force, "force", false, "allow a non-empty --out (keeps existing identity keys, rewrites configs)")
	return cmd
}

// spreadHosts puts node i on hosts[i-1]: its listen addresses and the
// addresses its peers dial.
func spreadHosts(nodes []*config.Node, hosts []string) error {
	api := map[uint16]string{}
	peer := map[uint16]string{}
	for _, n := range nodes {
		h := hosts[n.ID-1]
		_, ap, err := net.SplitHostPort(n.APIListen)
		if err != nil {
			return err
		}
		_, pp, err := net.SplitHostPort(n.PeerListen)
		if err != nil {
			return err
		}
		api[n.ID], peer[n.ID] = net.JoinHostPort(h, ap), net.JoinHostPort(h, pp)
	}
	for _, n := range nodes {
		n.APIListen, n.PeerListen = api[n.ID], peer[n.ID]
		for i := range n.Peers {
			p := &n.Peers[i]
			p.PeerAddr, p.APIURL = peer[p.ID], "http://"+api[p.ID]
		}
		if err := n.Validate(); err != nil {
			return fmt.Errorf("node %d: %w", n.ID, err)
		}
	}
	return nil
}
