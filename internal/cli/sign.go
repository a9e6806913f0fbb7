package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
)

const credsHelp = `
Credentials: --creds FILE (or $KEYMESH_CREDS), a JSON credentials file
with the node URL, scope, account, and the keys the scope's mode needs: a
developer key ("developerKey"), the user's key credential ("userKey") or
session ("sessionKey" and "session"), or a developer's and a user's for
hybrid mode; keymesh account create --dev-setup writes one for a
development cluster. --url, --scope, --account, --address override its
fields; --key-file FILE sets the developer key from a file holding only
it. The signing address defaults to the file's, else the account's first.

The signature is checked (go-ethereum ecrecover against the address)
before it is printed.`

func newSignCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign a message, typed data or a transaction with a threshold wallet",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSignMessageCmd(), newSignTypedDataCmd(), newSignTxCmd())
	return cmd
}

// readInput reads a file, or stdin for "-".
func readInput(cmd *cobra.Command, path string, limit int) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

func newSignMessageCmd() *cobra.Command {
	var (
		c     creds
		file  string
		isHex bool
	)
	cmd := &cobra.Command{
		Use:   "message [MESSAGE]",
		Short: "Sign a message with personal_sign (EIP-191); print the 65-byte signature as 0x hex",
		Long: `Sign a message with personal_sign (EIP-191): the cluster signs
keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message). The message is
the argument (UTF-8 text, or 0x hex with --hex) or the bytes of --file
(- for stdin). Prints r ‖ s ‖ v (v = 27 or 28) as 0x hex.
` + credsHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.warn = cmd.ErrOrStderr()
			var msg []byte
			switch {
			case file != "" && len(args) == 1:
				return errors.New("give the message as an argument or --file, not both")
			case file != "":
				b, err := readInput(cmd, file, api.MaxMessageBytes)
				if err != nil {
					return err
				}
				msg = b
			case len(args) == 1:
				msg = []byte(args[0])
			default:
				return errors.New("no message: give it as an argument or with --file")
			}
			if isHex {
				b, err := hexutil.Decode(strings.TrimSpace(string(msg)))
				if err != nil && strings.TrimSpace(string(msg)) != "0x" {
					return errors.New("--hex: the message is not 0x-prefixed hex bytes")
				}
				msg = b
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			acct, err := c.signer(ctx, 1)
			if err != nil {
				return err
			}
			sig, err := acct.SignMessage(ctx, msg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hexutil.Encode(sig))
			return nil
		},
	}
	c.flags(cmd.Flags(), true)
	cmd.Flags().StringVar(&file, "file", "", "read the message from this file (- for stdin)")
	cmd.Flags().BoolVar(&isHex, "hex", false, "the message is 0x hex bytes")
	return cmd
}

func newSignTypedDataCmd() *cobra.Command {
	var (
		c    creds
		file string
	)
	cmd := &cobra.Command{
		Use:   "typed-data --file FILE",
		Short: "Sign EIP-712 typed data (eth_signTypedData_v4); print the signature as 0x hex",
		Long: `Sign EIP-712 typed data with eth_signTypedData_v4. --file (- for stdin)
holds the typed data as JSON: {"types", "primaryType", "domain",
"message"}, as dapps pass it to a wallet. Prints r ‖ s ‖ v as 0x hex.
` + credsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			if file == "" {
				return errors.New("--file is required")
			}
			b, err := readInput(cmd, file, api.MaxTypedDataBytes)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			acct, err := c.signer(ctx, 1)
			if err != nil {
				return err
			}
			sig, err := acct.SignTypedDataJSON(ctx, bytes.TrimSpace(b))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hexutil.Encode(sig))
			return nil
		},
	}
	c.flags(cmd.Flags(), true)
	cmd.Flags().StringVar(&file, "file", "", "typed data JSON file (- for stdin)")
	return cmd
}

func newSignTxCmd() *cobra.Command {
	var (
		c    creds
		file string
	)
	cmd := &cobra.Command{
		Use:   "tx --file tx.json",
		Short: "Sign a transaction (eth_signTransaction); print the signed raw transaction as 0x hex",
		Long: `Sign a transaction with eth_signTransaction and print the signed raw
transaction (0x hex, ready for eth_sendRawTransaction). --file (- for
stdin) holds a transaction request as viem and go-ethereum write it, all
quantities 0x hex:

  {"type": "0x2", "chainId": "0x1", "nonce": "0x0", "to": "0x…",
   "value": "0xde0b6b3a7640000", "gas": "0x5208",
   "maxFeePerGas": "0x4a817c800", "maxPriorityFeePerGas": "0x3b9aca00"}

type 0x0 is legacy (EIP-155: chainId required, gasPrice), 0x1 EIP-2930
(gasPrice, accessList), 0x2 EIP-1559. "from" may be omitted; if given it
must be the signing address. The signed transaction is checked (same
transaction, sender = the address) before it is printed.
` + credsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			if file == "" {
				return errors.New("--file is required")
			}
			b, err := readInput(cmd, file, 2*api.MaxTxDataBytes+64<<10)
			if err != nil {
				return err
			}
			// Decoded as a node decodes it (one object, no unknown
			// member, nothing after it).
			req, err := client.DecodeTxRequest(b)
			var ae *api.Error
			if errors.As(err, &ae) { // the node's own words, without the JSON-RPC wrapping: nothing was sent
				return fmt.Errorf("%s: not a transaction request: %s", file, ae.Message)
			}
			if err != nil {
				return fmt.Errorf("%s: not a transaction request: %w", file, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			acct, err := c.signer(ctx, 1)
			if err != nil {
				return err
			}
			signed, err := acct.SignTxRequest(ctx, req)
			if err != nil {
				return err
			}
			raw, err := signed.MarshalBinary()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hexutil.Encode(raw))
			fmt.Fprintf(cmd.ErrOrStderr(), "transaction hash %s\n", signed.Hash().Hex())
			return nil
		},
	}
	c.flags(cmd.Flags(), true)
	cmd.Flags().StringVar(&file, "file", "", "transaction request JSON file (- for stdin)")
	return cmd
}
