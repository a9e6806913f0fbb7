package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// newAccountRegisterCmd is `keymesh account register --delegated`.
func newAccountRegisterCmd() *cobra.Command {
	var (
		c         creds
		delegated bool
		key       string
	)
	cmd := &cobra.Command{
		Use:   "register --delegated --key-file FILE --scope ID --account NAME",
		Short: "Register an account in a scope with the developer's key (delegated registration)",
		Long: `Register an account in a scope with the developer's key (developer-owned auth):
the developer key signs a payload holding the scope id, the user identifier
(--account), a fresh nonce and the current time, so that the registration
cannot be replayed; every node checks the signature against the scope's
developer keys. --user-key adds a public key (from scope keygen) that the
user can approve operations with.

The account keeps the scope's current mode for good. In user and hybrid mode
the --user-key is the user's half from then on: the developer can revoke it
but never add another key (the user adds keys with their own); register
without --user-key only in developer mode, where the developer adds keys.

Passkey registration happens in a browser: open the node's /login page.
A passkey account's id is its registration key's ("rk-" and 40 hex digits,
so that no one can take a user's id first); --account ids starting with
"rk-" are refused here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !delegated {
				return errors.New("only --delegated registration runs from the command line; register a passkey on the node's /login page")
			}
			c.warn = cmd.ErrOrStderr()
			keys, err := c.developerKeys()
			if err != nil {
				return err
			}
			if len(keys) != 1 {
				return errors.New("--key-file: account register takes one developer key")
			}
			k := keys[0]
			scope, account := c.loaded.Scope, c.loaded.Account
			if scope == "" || account == "" {
				return errors.New("--scope and --account are required")
			}
			cl, err := c.nodeClient()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			res, err := cl.RegisterDelegated(ctx, k, scope, account, key)
			if err != nil {
				return err
			}
			return printJSON(cmd, res)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&delegated, "delegated", false, "register with the developer's key (required: passkeys register in a browser)")
	c.flags(f, false) // --scope, and --account: the user identifier
	f.StringVar(&key, "user-key", "", "a public key the user approves operations with (optional)")
	return cmd
}
