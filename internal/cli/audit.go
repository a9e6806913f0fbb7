package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check and export a node's tamper-evident audit log",
		Long: `Every node appends each state change and signature to a hash chain in its
store, signs the chain's head with its identity key and sends it to its peers,
which keep the heads (docs/operations.md, "Audit log").

verify checks a node's chain against the heads its peers hold and names the
first bad entry (exit 1 on any problem); export streams entries as JSON lines;
heads prints the heads a node holds from another, for verify --heads;
crosscheck compares several nodes' logs for appends one of them skipped.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd(), newAuditHeadsCmd(), newAuditCrossCheckCmd())
	return cmd
}

// openNodeStore opens and migrates the store of the node cfg.
func openNodeStore(ctx context.Context, cfg *config.Node) (store.Store, error) {
	st, err := node.OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		cfgPath, identity string
		peerCfgs, heads   []string
		peerURLs          []string
		network           bool
	)
	cmd := &cobra.Command{
		Use:   "verify --config FILE [--network] [--peer-url URL]... [--peer-config FILE]... [--heads FILE]...",
		Short: "Check a node's audit chain against the heads its peers hold",
		Long: `verify reads the chain of the node --config names from its store and checks
every link, then checks it against the signed heads its peers hold: from the
peers' stores (--peer-config, each peer's own config file; its pinned key of
this node verifies the heads) and from files written by 'keymesh audit heads'
on the peers' machines (--heads), or over the network from the peers' APIs
(--network: every peer's api_url in --config; --peer-url: one URL each), where
every node serves the heads it holds (GET /audit/heads/{node}) with the key it
pins for that node; all of them must pin the same key, and the heads are
checked with it. It names the first entry that is missing,
changed, out of order, or rewritten after a peer received a head covering
it, and exits 1 on any problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			st, err := openNodeStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			var pub ed25519.PublicKey
			if identity != "" {
				if pub, err = config.ParsePublicKey(identity); err != nil {
					return fmt.Errorf("--identity-key: %w", err)
				}
			}
			var held []*audit.SignedHead
			for _, p := range peerCfgs {
				hs, key, err := peerHeads(ctx, p, cfg)
				if err != nil {
					return err
				}
				if pub == nil {
					pub = key
				} else if !pub.Equal(key) {
					return fmt.Errorf("%s pins another identity key for node %d than the other sources", p, cfg.ID)
				}
				held = append(held, hs...)
			}
			for _, f := range heads {
				hs, err := readHeads(f)
				if err != nil {
					return err
				}
				held = append(held, hs...)
			}
			if network {
				for _, p := range cfg.Peers {
					if p.APIURL != "" {
						peerURLs = append(peerURLs, p.APIURL)
					}
				}
			}
			if len(peerURLs) > 0 {
				hs, key, err := fetchPeerHeads(ctx, out, peerURLs, cfg.ID, pub)
				if err != nil {
					return err
				}
				pub = key
				held = append(held, hs...)
				// The node's own store names its key too: a store that
				// names another than its peers pin was edited.
				if b, err := st.Get(ctx, "node", "identity_key"); err == nil {
					if own, err := config.ParsePublicKey(string(b)); err == nil && !own.Equal(pub) {
						fmt.Fprintf(out, "bad: node %d's store names identity key %s, its peers pin %s\n", cfg.ID, strings.TrimSpace(string(b)), base64.StdEncoding.EncodeToString(pub))
						return fmt.Errorf("audit: node %d's store names another identity key than its peers pin", cfg.ID)
					}
				}
			}
			if pub == nil {
				// The node's own record of its key: enough to check the
				// signatures on heads from files, but a rewritten store
				// could name another key; prefer --peer-config or
				// --identity-key.
				b, err := st.Get(ctx, "node", "identity_key")
				if err != nil {
					return fmt.Errorf("the node's identity key: give --peer-config or --identity-key (%w)", err)
				}
				if pub, err = config.ParsePublicKey(string(b)); err != nil {
					return err
				}
				if len(held) > 0 {
					fmt.Fprintln(out, "note: the heads are checked with the identity key the node's own store names; --peer-config or --identity-key pins it")
				}
			}
			rep, err := audit.Verify(ctx, st, cfg.ID, pub, held)
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(out, "warning:", w)
			}
			if !rep.OK() {
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "bad: %s\n", p)
				}
				if f := rep.FirstBad(); f != 0 {
					return fmt.Errorf("audit: node %d's chain is not intact: first bad entry %d", cfg.ID, f)
				}
				return fmt.Errorf("audit: node %d's chain did not verify", cfg.ID)
			}
			fmt.Fprintf(out, "ok: node %d's chain of %d entries is intact; %d heads from its peers checked, the latest confirms entries up to %d\n",
				cfg.ID, rep.Entries, rep.Heads, rep.Matched)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the config file of the node whose chain to check")
	cmd.Flags().StringArrayVar(&peerCfgs, "peer-config", nil, "a peer's config file: the heads it holds are read from its store (repeatable)")
	cmd.Flags().StringArrayVar(&heads, "heads", nil, "a file of heads written by 'keymesh audit heads' on a peer (repeatable)")
	cmd.Flags().StringVar(&identity, "identity-key", "", "the node's identity public key (base64), to check the heads with")
	cmd.Flags().StringArrayVar(&peerURLs, "peer-url", nil, "a peer's API URL: the heads it holds are fetched over the network (repeatable)")
	cmd.Flags().BoolVar(&network, "network", false, "fetch the heads every peer in --config holds from its api_url")
	return cmd
}

// peerHeads returns the heads of node target that the peer whose config
// is at path holds, and the identity key that peer pins for target.
func peerHeads(ctx context.Context, path string, target *config.Node) ([]*audit.SignedHead, ed25519.PublicKey, error) {
	pc, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if pc.ClusterID != target.ClusterID || pc.ID == target.ID {
		return nil, nil, fmt.Errorf("%s is not another node of cluster %s", path, target.ClusterID)
	}
	p, ok := pc.Peer(target.ID)
	if !ok {
		return nil, nil, fmt.Errorf("%s has no peer %d", path, target.ID)
	}
	key, err := p.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	st, err := openNodeStore(ctx, pc)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	hs, err := audit.NewHeadStore(st).Heads(ctx, target.ID)
	return hs, key, err
}

// fetchPeerHeads fetches the heads of node target held by the peers at
// urls, and the identity key they all pin for it (and want, if not nil,
// must be it). An unreachable peer is a warning; none answering, or peers
// pinning different keys, is an error.
func fetchPeerHeads(ctx context.Context, out io.Writer, urls []string, target uint16, want ed25519.PublicKey) ([]*audit.SignedHead, ed25519.PublicKey, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	var fs []*audit.Fetched
	for _, u := range urls {
		f, err := audit.FetchHeads(ctx, hc, u, target)
		if err != nil {
			fmt.Fprintln(out, "warning:", err)
			continue
		}
		fmt.Fprintf(out, "node %d (%s) holds %d heads of node %d\n", f.Holder, u, len(f.Heads), target)
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return nil, nil, fmt.Errorf("audit: none of the %d peers answered with node %d's heads", len(urls), target)
	}
	key, err := audit.PinnedKey(fs, want)
	if err != nil {
		return nil, nil, err
	}
	var held []*audit.SignedHead
	for _, f := range fs {
		held = append(held, f.Heads...)
	}
	return held, key, nil
}

func readHeads(path string) ([]*audit.SignedHead, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*audit.SignedHead
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		sh, err := audit.ParseHeadJSON(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, sh)
	}
	return out, sc.Err()
}

func newAuditExportCmd() *cobra.Command {
	var cfgPath, since string
	cmd := &cobra.Command{
		Use:   "export --config FILE [--since TIME]",
		Short: "Stream a node's audit entries as JSON lines",
		Long: `export writes every entry of the node's chain whose time is at or after
--since (RFC 3339, or a duration such as 24h meaning that long ago; default:
all) to stdout, one JSON object a line, in chain order, for a log shipper.
Each line carries the entry's hash and the previous one's, so a shipper that
keeps the last hash can check the next batch continues it. It does not verify
the chain: use verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t time.Time
			if since != "" {
				var err error
				if t, err = time.Parse(time.RFC3339Nano, since); err != nil {
					d, derr := time.ParseDuration(since)
					if derr != nil {
						return fmt.Errorf("--since %q: want RFC 3339 (2026-12-05T08:00:00Z) or a duration (24h)", since)
					}
					t = time.Now().Add(-d)
				}
			}
			ctx := cmd.Context()
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			st, err := openNodeStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			enc := json.NewEncoder(w)
			err = audit.NewLog(st).Since(ctx, t, func(e *audit.Entry, h [32]byte) error { return enc.Encode(e.JSON(h)) })
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "node config file")
	cmd.Flags().StringVar(&since, "since", "", "only entries at or after this time (RFC 3339) or this long ago (a duration)")
	return cmd
}

func newAuditHeadsCmd() *cobra.Command {
	var (
		cfgPath string
		target  uint16
	)
	cmd := &cobra.Command{
		Use:   "heads --config FILE --node ID",
		Short: "Print the signed heads this node holds from another, as JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadNodeConfig(cfgPath)
			if err != nil {
				return err
			}
			if _, ok := cfg.Peer(target); !ok {
				return errors.New("--node must name a peer of this node")
			}
			st, err := openNodeStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			hs, err := audit.NewHeadStore(st).Heads(ctx, target)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, h := range hs {
				if err := enc.Encode(h.JSON()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "this node's config file")
	cmd.Flags().Uint16Var(&target, "node", 0, "the peer whose heads to print")
	return cmd
}

func newAuditCrossCheckCmd() *cobra.Command {
	var (
		cfgPaths []string
		grace    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "crosscheck --config FILE --config FILE... [--grace D]",
		Short: "Compare nodes' audit logs for appends one of them skipped",
		Long: `crosscheck reads the audit logs of the nodes whose config files are given
(from their stores) and finds appends a node skipped: every signature and key
generation is a session of several nodes, and each member logs it under the
gateway's request id, so a node that an entry of a successful session names as
a member, and whose own log has no entry for that request, skipped it (or lost
it). It names the node, the request and the entry that names it, and exits 1
if anything is missing. Requests younger than --grace below the newest entry
of the logs are not judged yet (their members may still be appending; 0 for
stopped nodes). It compares; it does not verify the chains
(use verify).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfgPaths) < 2 {
				return errors.New("give --config for at least two nodes of one cluster")
			}
			ctx := cmd.Context()
			logs := map[uint16][]*audit.Entry{}
			cluster := ""
			for _, p := range cfgPaths {
				cfg, err := loadNodeConfig(p)
				if err != nil {
					return err
				}
				if _, dup := logs[cfg.ID]; dup || (cluster != "" && cfg.ClusterID != cluster) {
					return fmt.Errorf("%s: node %d of cluster %s given twice, or another cluster", p, cfg.ID, cfg.ClusterID)
				}
				cluster = cfg.ClusterID
				st, err := openNodeStore(ctx, cfg)
				if err != nil {
					return err
				}
				var es []*audit.Entry
				err = audit.NewLog(st).Since(ctx, time.Time{}, func(e *audit.Entry, _ [32]byte) error { es = append(es, e); return nil })
				st.Close()
				if err != nil {
					return fmt.Errorf("node %d: %w", cfg.ID, err)
				}
				logs[cfg.ID] = es
			}
			out := cmd.OutOrStdout()
			skips := audit.CrossCheck(logs, grace)
			for _, s := range skips {
				fmt.Fprintf(out, "bad: %s\n", s)
			}
			if len(skips) > 0 {
				return fmt.Errorf("audit: %d appends missing, first from node %d", len(skips), skips[0].Node)
			}
			n := 0
			for _, es := range logs {
				n += len(es)
			}
			fmt.Fprintf(out, "ok: %d entries of %d nodes compared; no member of a session skipped its entry\n", n, len(logs))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&cfgPaths, "config", nil, "a node's config file (repeatable; at least two)")
	cmd.Flags().DurationVar(&grace, "grace", audit.Grace, "do not judge requests this much younger than the newest entry of the logs (0 for stopped nodes)")
	return cmd
}
