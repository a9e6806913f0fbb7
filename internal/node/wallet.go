package node

import (
	"github.com/keymesh/keymesh/internal/wallet"
)

// openWallet wires the wallet service into the node: its JSON-RPC methods
// (keymesh_createAccount, eth_requestAccounts, eth_accounts, personal_sign,
// eth_signTypedData_v4, eth_signTransaction, keymesh_signDigest) and its
// peer handlers. Shares are sealed by the node's enclave backend; every
// operation is authorised by the node's own auth service (openAuth runs
// first).
func (n *Node) openWallet(svc *services) error {
	opts := wallet.Options{
		Config:     n.cfg,
		Transport:  n.tr,
		RunSession: n.RunSession,
		Store:      n.store,
		Logger:     n.log.With("component", "wallet"),
	}
	if n.enclave != nil {
		opts.Sealer = n.enclave
	} else {
		n.log.Warn("wallet: no enclave backend; key shares are stored unsealed")
	}
	if a := n.Auth(); a != nil {
		opts.Auth = a
	}
	w, err := wallet.New(opts)
	if err != nil {
		return err
	}
	w.Register(svc.reg)
	return nil
}
