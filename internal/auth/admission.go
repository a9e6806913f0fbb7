package auth

import (
	"slices"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// AdmissionPolicy is the cluster's rule on who may create scopes (issue
// 16; config.Node's admission, docs/operations.md "Scope admission"). The
// zero value is open: any key may create a scope, as in development.
// Approved admits only scope.create records signed by at least one of
// Keys, the developer keys the operator approved.
//
// Like OriginPolicy it is a function of the record alone, applied both
// where records are submitted and by Apply, so every node of a cluster
// must have the same policy: then a scope.create that a malicious node
// pushes, or serves in catch-up, is refused by every honest node.
type AdmissionPolicy struct {
	Approved bool
	Keys     []record.PublicKey
}

// checkCreate refuses a scope.create none of whose signers is an
// approved key, under the approved policy. It does not verify
// signatures: Apply's devSigned does, so a record naming an approved key
// it cannot sign for is refused there.
func (p AdmissionPolicy) checkCreate(r *record.Record) error {
	if !p.Approved || r.Kind != record.ScopeCreate {
		return nil
	}
	for _, k := range r.Signers() {
		if slices.ContainsFunc(p.Keys, k.Equal) {
			return nil
		}
	}
	return deny(api.CodeRejected, "this cluster admits scopes created by developer keys its operator approved; none of the record's signers is one (ask the operator to approve your key)")
}
