package wallet

import (
	"context"
	"errors"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Auditor records the outcome of a wallet operation in the node's audit
// log (package audit). It must not fail the operation: the node logs its
// own errors.
type Auditor func(ctx context.Context, e audit.Entry)

// auditOp records op's outcome err, as kind, with the signer set (or key
// generation parties) and the ids of the keys whose approvals in proofs
// bind op. Nothing is recorded without an Auditor. Only ids, the
// operation hash and an error code are recorded (package audit's doc):
// never the params, the proofs' signatures or an error's text.
func (s *Service) auditOp(ctx context.Context, kind string, op auth.Operation, proofs string, parties []round.PartyID, err error) {
	if s.audit == nil {
		return
	}
	e := audit.Entry{Kind: kind, Scope: op.Scope, Account: op.Account, Method: op.Method, OpHash: op.Hash, Request: op.Request, Outcome: audit.OutcomeOK}
	e.Keys = audit.ApprovalKeys(proofs, op.Method, op.Hash)
	for _, p := range parties {
		e.Signers = append(e.Signers, uint16(p))
	}
	if err != nil {
		e.Outcome = audit.OutcomeFailed
		var ae *api.Error
		var pr *peerRefusal
		switch {
		case errors.As(err, &pr):
			code, _ := pr.split()
			e.Outcome, e.Code = audit.OutcomeRefused, int32(code)
		case errors.As(err, &ae):
			e.Outcome, e.Code = audit.OutcomeRefused, int32(ae.Code)
		}
	}
	s.audit(ctx, e)
}

// signOp is the operation a signature of p with w is authorized as.
func signOp(w *wallet, p *Prepared, req [requestLen]byte) auth.Operation {
	return auth.Operation{Scope: w.rec.Scope, Account: w.rec.Account, Method: p.Method, Hash: p.Hash(), Request: req}
}
