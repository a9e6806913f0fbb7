package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
heads prints the heads a node holds from another, for verify --heads.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd(), newAuditHeadsCmd())
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
	)
	cmd := &cobra.Command{
		Use:   "verify --config FILE [--peer-config FILE]... [--heads FILE]...",
		Short: "Check a node's audit chain against the heads its peers hold",
		Long: `verify reads the chain of the node --config names from its store and checks
every link, then checks it against the signed heads its peers hold: from the
peers' stores (--peer-config, each peer's own config file; its pinned key of
this node verifies the heads) and from files written by 'keymesh audit heads'
on the peers' machines (--heads). It names the first entry that is missing,
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
