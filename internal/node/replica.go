package node

// openReplica wires the replica service into the node.
func (n *Node) openReplica(svc *services) error { return nil }
