package node

// openWallet wires the wallet service into the node.
func (n *Node) openWallet(svc *services) error { return nil }
