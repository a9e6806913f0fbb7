package auth

import (
	"context"
	"errors"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// VerifyAccountRecord is how another service's replica.Applier checks a
// record of its own kind that an account writes (the vault's boxes,
// grants and revocations): r must be proven over its own signing message
// (a plain key's signature, record.AuthSignature, or a passkey assertion
// whose challenge is record.Challenge(kind, body), record.AuthPasskeyGet)
// by a credential ever registered to the account (scope, account), read
// through ops (the Applier's transaction). That is the rule auth's own
// Apply uses for an account's records: a credential revoked since still
// counts, so that whether the record applies does not depend on whether
// the revocation arrived first (docs/auth.md, "Convergence"); a gateway
// checks the live rule with CheckAccountRecord before it submits. A
// developer key is never an account's credential.
//
// The error is a *Denial, wrapping ErrInvalid, and ErrMissing too when the
// scope, the account or the credential is not (yet) known here.
func VerifyAccountRecord(ctx context.Context, ops store.Ops, r *record.Record, scope, account string) error {
	err := accountRecord(ctx, State{ops}, r, scope, account, true)
	var d *Denial
	if errors.As(err, &d) && d.Code == api.CodeAuthUnknown {
		return &Denial{Code: d.Code, Msg: d.Msg, Missing: true}
	}
	return err
}

// CheckAccountRecord is the gateway's check of a record an account
// writes, before it submits it: as VerifyAccountRecord, but the
// credential must be live (not revoked) and a passkey's assertion for the
// scope's current relying party and origins. It answers like
// Authorizer.Authorize (a *Denial whose API() is what the client sees).
func (s *Service) CheckAccountRecord(ctx context.Context, r *record.Record, scope, account string) error {
	return accountRecord(ctx, s.State(), r, scope, account, false)
}

func accountRecord(ctx context.Context, st State, r *record.Record, scope, account string, ever bool) error {
	_, cfg, err := st.Scope(ctx, scope)
	if err != nil {
		return err
	}
	if err := st.needAccount(ctx, scope, account); err != nil {
		return err
	}
	if ever {
		_, err = st.appliedProof(ctx, r, cfg, scope, account)
	} else {
		_, err = st.credentialProof(ctx, r, cfg, scope, account, st.credential)
	}
	return err
}
