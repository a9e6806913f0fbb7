package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/record"
)

// newScopeCmd is `keymesh scope`: developer keys and scopes (apps).
func newScopeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scope",
		Short: "Developer keys and scopes (apps): keygen, create, update",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newScopeKeygenCmd(), newScopeCreateCmd(), newScopeUpdateCmd())
	return cmd
}

func newScopeKeygenCmd() *cobra.Command {
	var out, alg string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Generate a developer key (P-256 or Ed25519); write it to FILE (mode 0600) and print its public key",
		Long: `Generate a developer key. The secret key is written to --out with mode 0600
(an existing file is never overwritten); keep it like a password. The public
key ("p256:…" or "ed25519:…") is printed: it goes in a scope's config, and the
key file is what --key-file takes in scope create, account register
--delegated and the client commands (developer-owned auth).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required (the file to write the secret key to)")
			}
			k, err := client.GenerateKey(alg)
			if err != nil {
				return fmt.Errorf("--alg: %w", err)
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s exists: not overwriting a key file", out)
			}
			if err != nil {
				return err
			}
			_, err = f.WriteString(k.MarshalPrivate() + "\n")
			if err = errors.Join(err, f.Close()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Public())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the secret key to (mode 0600; never overwritten)")
	cmd.Flags().StringVar(&alg, "alg", "p256", "key algorithm: p256 or ed25519")
	return cmd
}

// readDevKey reads a key file written by scope keygen.
func readDevKey(path string) (*client.Key, error) {
	if path == "" {
		return nil, errors.New("--key-file is required (a developer key from `keymesh scope keygen`)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("developer key: %w", err)
	}
	k, err := client.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s is not a key written by keymesh", path)
	}
	return k, nil
}

// developerKeys loads the connection and credentials flags and returns
// the developer keys that sign: every --key-file, else the credentials
// file's developerKey.
func (c *creds) developerKeys() ([]*client.Key, error) {
	files := c.keyFiles
	c.keyFiles = nil // read here, not as the credentials' developerKey
	if err := c.load(); err != nil {
		return nil, err
	}
	var keys []*client.Key
	for _, f := range files {
		k, err := readDevKey(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 && c.loaded.DeveloperKey != "" {
		k, err := client.ParseKey(c.loaded.DeveloperKey)
		if err != nil {
			return nil, errors.New("credentials: developerKey is not a key written by keymesh")
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("--key-file is required (a developer key from `keymesh scope keygen`), or --creds with a developerKey")
	}
	return keys, nil
}

// nodeClient is a client of the node the flags name, sealing to its
// attested enclave when they ask (--seal, --measurement, a credentials
// file that pins a build).
func (c *creds) nodeClient() (*client.Client, error) {
	return newClient(c.loaded.URL, 1, c.clientOptions()...)
}

func printJSON(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

func newScopeCreateCmd() *cobra.Command {
	var (
		c              creds
		rpID, mode     string
		origins        []string
		devKeys        []string
		ttl            time.Duration
		allowRawDigest bool
		quorum         int
		quota          quotaFlags
	)
	cmd := &cobra.Command{
		Use:   "create --key-file FILE --rp-id DOMAIN --origin URL",
		Short: "Create a scope (an app) signed by a developer key; print it as JSON",
		Long: `Create a scope: its config (WebAuthn relying party id and origins, the
account-control mode, the longest session lifetime and the developer keys) is
signed by the developer key in --key-file, which must be one of the scope's
developer keys (by default the only one). Every node verifies the signature
itself. The scope id is derived from the signed config and printed.

Modes: user (the user's passkey or session approves operations), developer
(the developer's key does: developer-owned auth), hybrid (both). An account
keeps the mode the scope had when it was registered (see docs/auth.md).

--developer-quorum is how many developer keys must sign a change of the
developer keys (scope update); 0, the default, means a majority (1 of 1,
2 of 2, 2 of 3).

--allow-raw-digest lets the scope's accounts sign raw 32-byte digests
(keymesh_signDigest). It is off by default: a raw digest may be a
transaction's or another app's message, which no one approving it can read.

Quotas (0: the nodes' default): --max-keygens-in-flight (2) key generations
at once per node, --max-signatures-per-second (50) per node as gateway (at
most 1000), --max-accounts (100,000), --max-keys (100,000) wallet keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			keys, err := c.developerKeys()
			if err != nil {
				return err
			}
			if len(keys) != 1 {
				return errors.New("--key-file: scope create takes one developer key")
			}
			k := keys[0]
			if rpID == "" || len(origins) == 0 {
				return errors.New("--rp-id and at least one --origin are required (the WebAuthn relying party)")
			}
			if ttl < time.Second || ttl%time.Second != 0 {
				return fmt.Errorf("--session-ttl %s: want whole seconds, at least 1s", ttl)
			}
			if len(devKeys) > 0 && !contains(devKeys, k.Public()) {
				return errors.New("--developer-key: the list must include the signing key's public key")
			}
			cl, err := c.nodeClient()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			sc, err := cl.CreateScope(ctx, k, client.ScopeConfig{RPID: rpID, Origins: origins, Mode: mode, SessionTTL: ttl, DeveloperKeys: devKeys, AllowRawDigest: allowRawDigest, DeveloperQuorum: quorum, Quota: quota.q})
			if err != nil {
				return err
			}
			return printJSON(cmd, sc)
		},
	}
	f := cmd.Flags()
	c.flags(f, false)
	f.StringVar(&rpID, "rp-id", "", "WebAuthn relying party id (a domain, e.g. app.example or localhost)")
	f.StringSliceVar(&origins, "origin", nil, "WebAuthn origin allowed for passkeys (repeatable), e.g. https://app.example")
	f.StringVar(&mode, "mode", "user", "account-control mode: user, developer or hybrid")
	f.DurationVar(&ttl, "session-ttl", time.Hour, "longest session lifetime")
	f.StringSliceVar(&devKeys, "developer-key", nil, "developer public keys of the scope (repeatable; default: the signing key's)")
	f.BoolVar(&allowRawDigest, "allow-raw-digest", false, "let the scope's accounts sign raw digests (keymesh_signDigest)")
	f.IntVar(&quorum, "developer-quorum", 0, "developer keys needed to change the developer keys (0: a majority)")
	quota.flags(f)
	return cmd
}

func newScopeUpdateCmd() *cobra.Command {
	var (
		c                creds
		origins, devKeys []string
		rpID, mode       string
		ttl              time.Duration
		allowRawDigest   bool
		quorum           int
		quota            quotaFlags
	)
	c.multiKey = true
	cmd := &cobra.Command{
		Use:   "update --key-file FILE [--key-file FILE…] --scope ID [changes]",
		Short: "Change a scope's config, signed by its developer keys; print it as JSON",
		Long: `Change a scope's config: the flags given replace those fields of the
current config (read from the node), the others stay. The new config is
signed by every --key-file, each a developer key of the current config.

One developer key changes the relying party, origins, mode, session lifetime
and --allow-raw-digest. A new mode applies to accounts registered from then
on; existing accounts keep theirs. Changing --developer-key or
--developer-quorum takes the current quorum of developer keys (repeat
--key-file), so that one stolen key cannot remove the others.

The quota flags (see scope create) replace the quotas they name; 0 sets the
nodes' default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			keys, err := c.developerKeys()
			if err != nil {
				return err
			}
			scope := c.loaded.Scope
			if scope == "" {
				return errors.New("--scope is required")
			}
			cl, err := c.nodeClient()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			cur, err := cl.GetScope(ctx, scope)
			if err != nil {
				return err
			}
			cfg := client.ScopeConfig{RPID: cur.RPID, Origins: cur.Origins, Mode: cur.Mode, SessionTTL: time.Duration(cur.SessionTTL) * time.Second,
				DeveloperKeys: cur.DevKeys, AllowRawDigest: cur.AllowRawDigest, Quota: quota.update(cmd.Flags(), cur.Quota)}
			fl := cmd.Flags()
			if fl.Changed("rp-id") {
				cfg.RPID = rpID
			}
			if fl.Changed("origin") {
				cfg.Origins = origins
			}
			if fl.Changed("mode") {
				cfg.Mode = mode
			}
			if fl.Changed("session-ttl") {
				if ttl < time.Second || ttl%time.Second != 0 {
					return fmt.Errorf("--session-ttl %s: want whole seconds, at least 1s", ttl)
				}
				cfg.SessionTTL = ttl
			}
			if fl.Changed("developer-key") {
				cfg.DeveloperKeys = devKeys
			}
			if fl.Changed("allow-raw-digest") {
				cfg.AllowRawDigest = allowRawDigest
			}
			if fl.Changed("developer-quorum") {
				cfg.DeveloperQuorum = quorum
			} else if !fl.Changed("developer-key") {
				// Keep the quorum as it is: the effective value, unless it is the default.
				if cur.DevQuorum != record.DefaultDevQuorum(len(cur.DevKeys)) {
					cfg.DeveloperQuorum = cur.DevQuorum
				}
			}
			sc, err := cl.UpdateScopeQuorum(ctx, keys, scope, cur.Seq+1, cfg)
			if err != nil {
				return err
			}
			return printJSON(cmd, sc)
		},
	}
	f := cmd.Flags()
	c.flags(f, false) // --key-file repeats here: a quorum of developer keys
	f.StringVar(&rpID, "rp-id", "", "new WebAuthn relying party id")
	f.StringSliceVar(&origins, "origin", nil, "new WebAuthn origins (repeatable; replaces the list)")
	f.StringVar(&mode, "mode", "", "new account-control mode for accounts registered from now on: user, developer or hybrid")
	f.DurationVar(&ttl, "session-ttl", 0, "new longest session lifetime")
	f.StringSliceVar(&devKeys, "developer-key", nil, "new developer public keys (repeatable; replaces the list; takes a quorum)")
	f.IntVar(&quorum, "developer-quorum", 0, "new developer-key quorum (0: a majority; takes a quorum)")
	f.BoolVar(&allowRawDigest, "allow-raw-digest", false, "let the scope's accounts sign raw digests")
	quota.flags(f)
	return cmd
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// quotaFlags are the scope quota flags of scope create and update.
type quotaFlags struct{ q api.ScopeQuota }

func (qf *quotaFlags) flags(f *pflag.FlagSet) {
	f.Uint32Var(&qf.q.KeygensInFlight, "max-keygens-in-flight", 0, "key generations of the scope at once, per node (0: default 2)")
	f.Uint32Var(&qf.q.SignaturesPerSecond, "max-signatures-per-second", 0, "signatures per second, per node as gateway (0: default 50; at most 1000)")
	f.Uint32Var(&qf.q.MaxAccounts, "max-accounts", 0, "accounts in the scope (0: default 100,000)")
	f.Uint32Var(&qf.q.MaxKeys, "max-keys", 0, "wallet keys in the scope (0: default 100,000)")
}

// update returns cur with the quotas whose flags were given replaced.
func (qf *quotaFlags) update(f *pflag.FlagSet, cur api.ScopeQuota) api.ScopeQuota {
	for name, dst := range map[string]*uint32{
		"max-keygens-in-flight":     &cur.KeygensInFlight,
		"max-signatures-per-second": &cur.SignaturesPerSecond,
		"max-accounts":              &cur.MaxAccounts,
		"max-keys":                  &cur.MaxKeys,
	} {
		if f.Changed(name) {
			v, _ := f.GetUint32(name)
			*dst = v
		}
	}
	return cur
}
