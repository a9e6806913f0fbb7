package node

import "github.com/keymesh/keymesh/internal/uid"

// openUID builds the identity service (internal/uid): a threshold OPRF key
// per scope, shares sealed by the node's enclave, every operation
// authorised by the node's own auth service (openAuth runs first).
func (n *Node) openUID() (Service, error) {
	opts := uid.Options{Self: n.cfg.ID, Threshold: n.cfg.Threshold, Nodes: n.cfg.IDs(), Transport: n.tr,
		RunSession: n.RunSession, Store: n.store, Logger: n.log.With("component", "uid")}
	if n.enclave != nil {
		opts.Sealer = n.enclave
	}
	if a := n.Auth(); a != nil {
		opts.Auth = a
	}
	if n.replica != nil {
		opts.CatchUp = n.replica.CatchUp
	}
	return uid.New(opts)
}
