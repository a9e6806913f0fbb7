package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
)

// Credentials files.
//
// The client commands (account, sign, bench) act for one account of one
// scope, and need something that approves their requests: a developer key
// (developer-owned auth: the scope's mode is developer or hybrid) or a
// session key authorised by the user's passkey. They come from a
// credentials file (--creds, or $KEYMESH_CREDS), a JSON object:
//
//	{
//	  "url": "http://127.0.0.1:7100",
//	  "scope": "…", "account": "alice",
//	  "developerKey": "<client.Key.MarshalPrivate>",
//	  "userKey": "<client.Key.MarshalPrivate>",
//	  "sessionKey": "<client.Key.MarshalPrivate>", "session": {api.Session},
//	  "address": "0x…",
//	  "measurements": ["<hex>"], "platformKeys": ["<hex>"],
//	  "nodeIdentity": "<base64>"
//	}
//
// with the keys the scope's mode needs: developerKey (developer mode), the
// user's (user mode): userKey, a key credential registered with the account
// (keymesh account register --delegated --user-key), or sessionKey+session,
// a session key authorised by the user's passkey; both a developer key and
// a user's for hybrid mode (each request then carries both approvals).
// Flags override
// its fields (--url, --scope, --account, --address, and --key-file for a
// file holding only a developer key). The file holds secret keys: it is
// written with mode 0600 and must be kept like a password.
type credsFile struct {
	URL          string       `json:"url,omitempty"`
	Scope        string       `json:"scope,omitempty"`
	Account      string       `json:"account,omitempty"`
	DeveloperKey string       `json:"developerKey,omitempty"`
	UserKey      string       `json:"userKey,omitempty"`
	SessionKey   string       `json:"sessionKey,omitempty"`
	Session      *api.Session `json:"session,omitempty"`
	Address      string       `json:"address,omitempty"`
	// Measurements, when set, make the client seal every request to the
	// node's attested enclave keys, accepting only these builds.
	Measurements []string `json:"measurements,omitempty"`
	// PlatformKeys are the cluster's sim platform keys (hex): the roots its
	// nodes' simulated quotes are verified against (`keymesh cluster init`
	// prints it; `account create --dev-setup` writes the dev cluster's).
	PlatformKeys []string `json:"platformKeys,omitempty"`
	// NodeIdentity is the identity key of the node at URL (base64, the
	// cluster config's identity_key; cluster init prints it): a sealing
	// client refuses another node's attestation, and seals for this node
	// only.
	NodeIdentity string `json:"nodeIdentity,omitempty"`
	// Cluster is the cluster's roster (cluster id, threshold, identity
	// keys; the cluster.json cluster init writes): what --release approvals
	// of a new build are checked against.
	Cluster *config.Roster `json:"cluster,omitempty"`
	// AllowSimulated records that the pinned node was accepted on the sim
	// backend (--allow-simulated when its measurement was pinned).
	AllowSimulated bool `json:"allowSimulated,omitempty"`
}

// defaultURL is node 1 of `keymesh dev`.
const defaultURL = "http://127.0.0.1:7100"

// creds are the client commands' connection and credential flags.
type creds struct {
	file     string
	url      string
	keyFiles []string // --key-file; one, except where a command takes several (scope update)
	multiKey bool     // the command takes several --key-file (scope update)
	scope    string
	account  string
	address  string
	timeout  time.Duration
	// Sealing (see sealFlags).
	measurements   []string
	platformKeys   []string
	nodeIdentity   string
	minKEM         string
	seal, allowSim bool
	warn           io.Writer
	// Pins and release authorisations (pins.go).
	knownNodes  string
	releases    []string
	clusterFile string
	noPins      bool // account create --dev-setup: the file is written at the end
	release     *client.ReleaseTrust
	// extra options for every client the command makes (bench sign: a
	// patient retry policy).
	extra []client.Option

	loaded credsFile // the file's contents, after flags applied
}

// flags registers the connection and credentials flags: every command
// that talks to a node takes these (the client commands, scope create and
// update, account register), so each can seal its requests to the
// node's attested enclave (--seal, --measurement) and pin it.
func (c *creds) flags(fs *pflag.FlagSet, withAddress bool) {
	fs.StringVar(&c.file, "creds", os.Getenv("KEYMESH_CREDS"), "credentials file (JSON: url, scope, account, developerKey or sessionKey+session, address); default $KEYMESH_CREDS")
	fs.StringVar(&c.url, "url", "", "node API URL (default: the credentials file's, else $KEYMESH_URL, else "+defaultURL+")")
	fs.StringArrayVar(&c.keyFiles, "key-file", nil, "file holding a developer key, from scope keygen (replaces the credentials file's developerKey)")
	fs.StringVar(&c.scope, "scope", "", "scope id (default: the credentials file's)")
	fs.StringVar(&c.account, "account", "", "account id within the scope (default: the credentials file's)")
	if withAddress {
		fs.StringVar(&c.address, "address", "", "wallet address to sign with (default: the credentials file's, else the account's first)")
	}
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "time limit for the command")
	measurementFlag(fs, &c.measurements, "seal requests to the node's enclave, accepting only this build measurement")
	fs.BoolVar(&c.seal, "seal", false, "seal requests; without --measurement, trust the node's measurement on first use (with a warning)")
	fs.BoolVar(&c.allowSim, "allow-simulated", false, "accept the simulated enclave's quotes (development clusters; needs the cluster's --platform-key)")
	fs.StringSliceVar(&c.platformKeys, "platform-key", nil, "the cluster's sim platform key (hex; `keymesh cluster init` prints it), the root simulated quotes are verified against (default: the credentials file's platformKeys)")
	fs.StringVar(&c.minKEM, "min-kem", "x-wing", "weakest KEM accepted for the node's request key: x-wing or x25519")
	fs.StringVar(&c.knownNodes, "known-nodes", "", "known-nodes file pinning each node's measurement, identity and roots (default: the credentials file when --creds is given, else $KEYMESH_KNOWN_NODES, else ~/.keymesh/known_nodes.json)")
	fs.StringSliceVar(&c.releases, "release", nil, "release approval of a new build by a node of the cluster (keymesh enclave approve-release; repeat: t nodes are needed): accept the node's changed measurement and pin it")
	fs.StringVar(&c.clusterFile, "cluster", "", "the cluster's roster ("+config.RosterFile+", written by keymesh cluster init) to check --release approvals against (default: the credentials file's cluster)")
	fs.StringVar(&c.nodeIdentity, "node-identity", "", "the identity key of the node at --url (base64 as in the cluster config, or hex): refuse another node's attestation (default: the credentials file's nodeIdentity)")
}

// clientOptions are the options of every client the command makes:
// sealing to the attested node when asked (--measurement, --seal, or
// measurements in the credentials file).
func (c *creds) clientOptions() []client.Option { return c.clientOptionsFor(c.loaded.URL) }

// clientOptionsFor is clientOptions for a client of the node at url. The
// expected node identity (--node-identity, the credentials' nodeIdentity)
// is that of the credentials' node: a client of another node (bench sign
// --url A,B) pins the identity it first verifies instead.
func (c *creds) clientOptionsFor(url string) []client.Option {
	return append(c.sealOptionsFor(url), c.extra...)
}

// sealOptionsFor is clientOptionsFor without c.extra.
func (c *creds) sealOptionsFor(url string) []client.Option {
	ms := c.loaded.Measurements
	explicit := len(c.measurements) > 0
	if explicit {
		ms = c.measurements
	}
	if len(ms) == 0 && !c.seal {
		return nil
	}
	// The pin store: the measurement the credentials file pinned is
	// checked (and a release-approved change recorded) through it.
	var pins client.PinStore
	if !explicit && !c.noPins && len(ms) <= 1 {
		switch {
		case c.knownNodes != "":
			pins = client.KnownNodes(c.knownNodes)
		case c.file != "":
			pins = &credsPins{path: c.file}
		default:
			if p := defaultKnownNodes(); p != "" {
				pins = client.KnownNodes(p)
			}
		}
	}
	if pins != nil && c.knownNodes == "" && c.file != "" {
		ms = nil // loaded through credsPins
	}
	warn := c.warn
	if warn == nil {
		warn = os.Stderr
	}
	roots := c.loaded.PlatformKeys
	if len(c.platformKeys) > 0 {
		roots = c.platformKeys
	}
	node := c.loaded.NodeIdentity
	if c.nodeIdentity != "" {
		node = c.nodeIdentity
	}
	if url != c.loaded.URL {
		node = ""
	}
	return []client.Option{client.WithAttestation(client.Attestation{
		Pins:            pins,
		Release:         c.release,
		NodeIdentity:    node,
		Measurements:    ms,
		TrustOnFirstUse: len(ms) == 0 && c.seal,
		AllowSimulated:  c.allowSim,
		SimPlatformKeys: roots,
		MinKEM:          c.minKEM,
		Warn:            func(msg string) { fmt.Fprintln(warn, "keymesh: warning:", msg) },
	})}
}

// load reads the credentials file (if any) and applies the flags over it.
func (c *creds) load() error {
	if c.file != "" {
		f, err := readCredsFile(c.file)
		if err != nil {
			return err
		}
		c.loaded = *f
	}
	var err error
	if c.release, err = c.releaseTrust(); err != nil {
		return err
	}
	set := func(dst *string, flag string) {
		if flag != "" {
			*dst = flag
		}
	}
	set(&c.loaded.URL, c.url)
	set(&c.loaded.Scope, c.scope)
	set(&c.loaded.Account, c.account)
	set(&c.loaded.Address, c.address)
	if c.loaded.URL == "" {
		c.loaded.URL = os.Getenv("KEYMESH_URL")
	}
	if c.loaded.URL == "" {
		c.loaded.URL = defaultURL
	}
	switch len(c.keyFiles) {
	case 0:
	case 1:
		b, err := os.ReadFile(c.keyFiles[0])
		if err != nil {
			return fmt.Errorf("developer key: %w", err)
		}
		c.loaded.DeveloperKey = strings.TrimSpace(string(b))
	default:
		if !c.multiKey {
			return errors.New("--key-file: this command takes one developer key")
		}
	}
	if s := c.loaded.Session; s != nil {
		if c.loaded.Scope == "" {
			c.loaded.Scope = s.Scope
		}
		if c.loaded.Account == "" {
			c.loaded.Account = s.Account
		}
	}
	return nil
}

// jsonReason describes a JSON decoding error without echoing the input
// (which holds secret keys).
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field + " has the wrong type"
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field") {
		return s[len("json: "):]
	}
	return "malformed JSON"
}

// newClient returns a client for url whose connection pool keeps conns
// connections to the node (the default keeps 2, which would make a
// concurrent load open and close connections all the time).
func newClient(url string, conns int, opts ...client.Option) (*client.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(conns, 2) * 2
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return client.New(url, append([]client.Option{client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 5 * time.Minute})}, opts...)...)
}

// approver returns what approves the account's requests, from the loaded
// credentials: the developer's key, the user's (key credential or session),
// or both (hybrid: every request carries both approvals).
func (c *creds) approver() (client.Approver, error) {
	l := &c.loaded
	type signer interface {
		Sign(client.Operation) (client.Proof, error)
	}
	var signers []signer
	if l.DeveloperKey != "" {
		k, err := client.ParseKey(l.DeveloperKey)
		if err != nil {
			return nil, errors.New("credentials: developerKey is not a key written by keymesh")
		}
		if l.Scope == "" {
			return nil, errors.New("credentials: --scope is required with a developer key")
		}
		signers = append(signers, client.DeveloperSigner(k, l.Scope))
	}
	switch {
	case l.UserKey != "":
		k, err := client.ParseKey(l.UserKey)
		if err != nil {
			return nil, errors.New("credentials: userKey is not a key written by keymesh")
		}
		if l.Scope == "" || l.Account == "" {
			return nil, errors.New("credentials: --scope and --account are required with a user key")
		}
		signers = append(signers, client.UserKeySigner(k, l.Scope, l.Account))
	case l.SessionKey != "" && l.Session != nil:
		k, err := client.ParseKey(l.SessionKey)
		if err != nil {
			return nil, errors.New("credentials: sessionKey is not a key written by keymesh")
		}
		s, err := client.NewSession(k, l.Session)
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		if time.Now().After(s.Expiry) {
			return nil, fmt.Errorf("credentials: the session expired at %s: authenticate again", s.Expiry.UTC().Format(time.RFC3339))
		}
		signers = append(signers, s)
	}
	switch len(signers) {
	case 0:
		return nil, errors.New("no credentials: give --creds (a credentials file with a developer key, a user key or a session) or --key-file (a developer key)")
	case 1:
		return client.HybridApprover(signers[0]), nil
	}
	return client.HybridApprover(signers[0], signers[1]), nil
}

// accountArgs checks that scope and account are known.
func (c *creds) accountArgs() (scope, account string, err error) {
	if c.loaded.Scope == "" || c.loaded.Account == "" {
		return "", "", errors.New("--scope and --account are required (or a credentials file that names them)")
	}
	return c.loaded.Scope, c.loaded.Account, nil
}

// signer resolves the wallet to sign with: the given address, or the
// account's first (eth_accounts).
func (c *creds) signer(ctx context.Context, conns int) (*client.Account, error) {
	if err := c.load(); err != nil {
		return nil, err
	}
	return c.signerLoaded(ctx, conns)
}

// connect resolves, from loaded credentials, the approver, the scope and
// account, and a client of the node with conns connections.
func (c *creds) connect(conns int) (cl *client.Client, ap client.Approver, scope, account string, err error) {
	if ap, err = c.approver(); err != nil {
		return nil, nil, "", "", err
	}
	if scope, account, err = c.accountArgs(); err != nil {
		return nil, nil, "", "", err
	}
	if cl, err = newClient(c.loaded.URL, conns, c.clientOptions()...); err != nil {
		return nil, nil, "", "", err
	}
	return cl, ap, scope, account, nil
}

// signerLoaded is signer with the credentials already loaded.
func (c *creds) signerLoaded(ctx context.Context, conns int) (*client.Account, error) {
	cl, ap, scope, account, err := c.connect(conns)
	if err != nil {
		return nil, err
	}
	if a := c.loaded.Address; a != "" {
		if !common.IsHexAddress(a) || len(a) != 42 {
			return nil, fmt.Errorf("--address %q is not a 0x-prefixed 20-byte hex address", a)
		}
		return client.NewAccount(cl, ap, scope, account, common.HexToAddress(a)), nil
	}
	addrs, err := client.Accounts(ctx, cl, ap, scope, account)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("account %s/%s has no wallet yet: run keymesh account create", scope, account)
	}
	return client.NewAccount(cl, ap, scope, account, addrs[0]), nil
}

// writeCreds writes f to path with mode 0600, refusing to overwrite a file
// unless overwrite is set.
func writeCreds(path string, f *credsFile, overwrite bool) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flag |= os.O_EXCL
	}
	out, err := os.OpenFile(path, flag, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("credentials file %s exists: not overwriting it", path)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return errors.Join(err, out.Close())
}

// newAccountCmd is the parent of the account commands. (`account register
// --delegated` lives in account_register.go.)
func newAccountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Create and manage wallet accounts on a cluster",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAccountCreateCmd(), newAccountRegisterCmd(), newAccountListCmd())
	return cmd
}

func newAccountCreateCmd() *cobra.Command {
	var (
		c        creds
		devSetup bool
		rpID     string
		devDir   string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a threshold wallet key for an account (DKG across the cluster); print its address",
		Long: `Create a new wallet key for an account: every node of the cluster takes
part in distributed key generation and keeps one share; no node ever holds
the key. Prints the address and the compressed public key.

The account must exist (keymesh account register) and the credentials
must be allowed to approve for it (--creds or --key-file, see keymesh sign
--help).

With --dev-setup (for development clusters), it first generates a
developer key, creates a developer-mode scope signed by it and registers
--account there, then writes all of it, with the new address, to the
--creds file (mode 0600; it must not exist yet). It also writes the dev
cluster's sim platform key, read from --dev-dir (the directory keymesh dev
runs in), so that later commands can verify the nodes' quotes when they
seal (--seal, --measurement); --platform-key overrides it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			if devSetup {
				if c.file == "" || c.account == "" {
					return errors.New("--dev-setup needs --creds (the file to write) and --account")
				}
				if _, err := os.Stat(c.file); err == nil {
					return fmt.Errorf("credentials file %s exists: not overwriting it", c.file)
				}
				url := c.url
				if url == "" {
					url = os.Getenv("KEYMESH_URL")
				}
				if url == "" {
					url = defaultURL
				}
				roots, err := devRoots(&c, devDir)
				if err != nil {
					return err
				}
				c.platformKeys = roots
				c.noPins = true
				f, res, err := devAccount(ctx, url, c.account, rpID, c.clientOptions()...)
				if err != nil {
					return err
				}
				if len(c.measurements) > 0 {
					f.Measurements = c.measurements
				}
				f.PlatformKeys = roots
				f.Cluster = devRoster(devDir)
				if err := writeCreds(c.file, f, false); err != nil {
					return err
				}
				printAccount(out, res)
				return nil
			}
			if err := c.load(); err != nil {
				return err
			}
			cl, ap, scope, account, err := c.connect(1)
			if err != nil {
				return err
			}
			res, err := createRetry(ctx, cl, ap, scope, account)
			if err != nil {
				return err
			}
			printAccount(out, res)
			return nil
		},
	}
	c.flags(cmd.Flags(), false)
	cmd.Flags().BoolVar(&devSetup, "dev-setup", false, "first make a developer key and scope, register --account, and write them to --creds")
	cmd.Flags().StringVar(&rpID, "rp-id", "localhost", "with --dev-setup: the scope's WebAuthn relying party id")
	cmd.Flags().StringVar(&devDir, "dev-dir", ".keymesh/dev", "with --dev-setup: the keymesh dev cluster directory, whose "+attest.SimPlatformKeyFile+" is written to --creds")
	return cmd
}

// devRoots returns the sim platform keys a --dev-setup credentials file
// gets: --platform-key, else the dev cluster's (dir/sim-platform-key, which
// cluster init and keymesh dev write). Without either, sealing is refused
// (it could not verify the nodes' quotes) and plaintext goes on with a
// warning.
func devRoots(c *creds, dir string) ([]string, error) {
	if len(c.platformKeys) > 0 {
		return c.platformKeys, nil
	}
	path := filepath.Join(dir, attest.SimPlatformKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, err := attest.ParseSimPlatformKey(k); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return []string{k}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if c.seal || len(c.measurements) > 0 {
		return nil, fmt.Errorf("no sim platform key to verify the dev cluster's quotes: %s does not exist; give --dev-dir (the directory keymesh dev runs in) or --platform-key", path)
	}
	w := c.warn
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "keymesh: warning: %s does not exist: the credentials file gets no sim platform key, and sealed requests (--seal, --measurement) will need --platform-key\n", path)
	return nil, nil
}

func printAccount(w interface{ Write([]byte) (int, error) }, res *api.CreateAccountResult) {
	fmt.Fprintf(w, "address    %s\npublic key %s\naccount    %s/%s\nthreshold  %d of %d\n",
		res.Address, res.PublicKey, res.Scope, res.Account, res.Threshold, res.N)
}

// devAccount makes everything a client needs on a development cluster:
// a new developer key, a developer-mode scope signed by it, the account
// registered in it (delegated registration), and a wallet key for it. The
// scope has the nodes' default quotas.
func devAccount(ctx context.Context, url, account, rpID string, opts ...client.Option) (*credsFile, *api.CreateAccountResult, error) {
	return devAccountQuota(ctx, url, account, rpID, api.ScopeQuota{}, opts...)
}

// devAccountQuota is devAccount with the scope's quota (zero fields: the
// nodes' defaults).
func devAccountQuota(ctx context.Context, url, account, rpID string, quota api.ScopeQuota, opts ...client.Option) (*credsFile, *api.CreateAccountResult, error) {
	cl, err := newClient(url, 1, opts...)
	if err != nil {
		return nil, nil, err
	}
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		return nil, nil, err
	}
	scope, err := cl.CreateScope(ctx, dev, client.ScopeConfig{
		RPID:       rpID,
		Origins:    []string{"http://" + rpID},
		Mode:       "developer",
		SessionTTL: 24 * time.Hour,
		Quota:      quota,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating a scope: %w", err)
	}
	if _, err := cl.RegisterDelegated(ctx, dev, scope.ID, account, ""); err != nil {
		return nil, nil, fmt.Errorf("registering account %s: %w", account, err)
	}
	res, err := createRetry(ctx, cl, client.DeveloperSigner(dev, scope.ID), scope.ID, account)
	if err != nil {
		return nil, nil, err
	}
	f := &credsFile{URL: url, Scope: scope.ID, Account: account, DeveloperKey: dev.MarshalPrivate(), Address: res.Address}
	if a := cl.Attested(); a != nil {
		// Sealed: pin the node whose attestation was verified, and its
		// build, so that later commands refuse another one (--seal on
		// first use pins it too).
		f.NodeIdentity = a.NodeIdentity
		f.Measurements = []string{a.Measurement}
		f.AllowSimulated = a.Simulated
	}
	return f, res, nil
}

// createRetry calls keymesh_createAccount, and again (for up to 10 s) while
// a node refuses because it does not know the scope or account yet: a
// registration returns once n−t+1 nodes stored it, while key generation
// needs all n, so right after registering, the last node may still be
// catching up.
func createRetry(ctx context.Context, cl *client.Client, ap client.Approver, scope, account string) (*api.CreateAccountResult, error) {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, res, err := client.CreateAccount(ctx, cl, ap, scope, account)
		var ae *api.Error
		catchingUp := errors.As(err, &ae) && (ae.Code == api.CodeAuthUnknown || ae.Code == api.CodeRejected) && strings.Contains(ae.Message, "unknown")
		if !catchingUp || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func newAccountListCmd() *cobra.Command {
	var c creds
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List an account's wallet addresses (eth_accounts), oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			if err := c.load(); err != nil {
				return err
			}
			cl, ap, scope, account, err := c.connect(1)
			if err != nil {
				return err
			}
			addrs, err := client.Accounts(ctx, cl, ap, scope, account)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				fmt.Fprintln(cmd.OutOrStdout(), a.Hex())
			}
			return nil
		},
	}
	c.flags(cmd.Flags(), false)
	return cmd
}
