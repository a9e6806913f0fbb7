package node

import "github.com/keymesh/keymesh/internal/auth"

// authAdmission is the cluster's rule on who may create scopes
// (config.Node's admission, the same on every node of a cluster), for the
// auth service's submission check and the replica's auth Applier: under
// "approved" only scope.create records signed by an approved developer
// key are stored (docs/operations.md, "Scope admission").
func (n *Node) authAdmission() auth.AdmissionPolicy {
	return auth.AdmissionPolicy{Approved: n.cfg.Admission.Approved(), Keys: n.cfg.Admission.Keys()}
}
