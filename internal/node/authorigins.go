package node

import "github.com/keymesh/keymesh/internal/auth"

// authOrigins is the cluster's rule on scope origins (config.Node's
// production and node_hosts, the same on every node of a cluster), for
// the auth service's submission check and the replica's auth Applier:
// production clusters refuse scopes listing an origin on a node's host
// (docs/auth.md, "Scope origins in production").
func (n *Node) authOrigins() auth.OriginPolicy {
	return auth.OriginPolicy{Production: n.cfg.Production, NodeHosts: n.cfg.NodeHosts}
}
