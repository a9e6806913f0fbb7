package node

import "github.com/keymesh/keymesh/internal/httpapi"

// services collects what the node's services add to the API while New
// wires them: JSON-RPC methods and extra HTTP routes.
type services struct {
	reg    *httpapi.Registry
	routes []httpapi.Route
}

// route adds an extra HTTP route (see httpapi.Route).
func (s *services) route(r httpapi.Route) { s.routes = append(s.routes, r) }

// openServices wires the node's services in dependency order: records
// replication, then auth (which stores its records through replication),
// then wallets (which ask auth before signing). Each lives in its own file
// (replica.go, auth.go, wallet.go) and registers what it closes in
// n.closers.
func (n *Node) openServices(svc *services) error {
	if err := n.openAudit(); err != nil { // first: the services append to it
		return err
	}
	if err := n.openReplica(svc); err != nil {
		return err
	}
	if err := n.openAuth(svc); err != nil {
		return err
	}
	return n.openWallet(svc)
}
