package auth

import (
	"context"
	"errors"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// checkSubmission checks a record submitted to this node against the
// node's current state, beyond what Apply checks. Apply decides from the
// set of stored records only, so that every node ends in the same state
// whatever order records arrive in; some of its rules must therefore
// accept records that are valid only in a state a node has moved past
// (signed by a developer key a quorum removed since, or a move to a mode
// the scope left). A client submitting one now is told so here instead of
// having it stored without effect (docs/auth.md, "Convergence"):
//
//   - a delegated registration, or a developer's credential.add, must be
//     signed by developer keys of the scope's current config, and the
//     add is for an account in developer mode;
//   - a session.create, and a user's credential.add, must be proven by a
//     live credential of the account (Apply takes any credential ever
//     registered to it), a passkey on one of the scope's current origins;
//   - a passkey registration must be made on one of the scope's current
//     origins (Apply takes any origin the scope had: passkeyorigin.go);
//   - an account.mode must move the account to the scope's current mode,
//     from another mode, with a seq above the account's last change, and
//     be signed as the account's current mode requires: developer keys of
//     the current config in developer mode, a live credential of the
//     account otherwise.
//
// Errors it cannot judge (unknown scope or account, bad encodings) are
// left to Apply.
func (s State) checkSubmission(ctx context.Context, rec *record.Record) error {
	body, err := record.DecodeBody(rec.Kind, rec.Body)
	if err != nil {
		return nil
	}
	// A key that is or was a developer key of the scope is never a user's
	// credential: refused here, and dead if stored (Live, devrole.go;
	// Apply refuses the base config's, which no record changes).
	var cred *record.Credential
	switch b := body.(type) {
	case *record.AccountRegisterBody:
		cred = b.Credential
	case *record.CredentialAddBody:
		cred = &b.Credential
	}
	if cred != nil && cred.Kind == record.CredKey {
		if k, err := cred.Key(); err == nil {
			if dev, err := s.everDevKey(ctx, recordScope(body), k); err == nil && dev {
				return deny(api.CodeAuthBadProof, "%s: a developer key of the scope cannot be a user's credential", rec.Kind)
			}
		}
	}
	switch b := body.(type) {
	case *record.SessionCreateBody:
		// Apply stores a session.create proven by any credential ever
		// registered to the account (the session is dead while its maker
		// is), so that it applies the same before and after a revocation.
		// A client asking now with a revoked (or otherwise dead)
		// credential gets no session at all: keymesh_completeAuthentication
		// refuses it and stores nothing.
		_, cfg, err := s.Scope(ctx, b.Scope)
		if err != nil {
			return nil
		}
		if _, err := s.credentialAuthority(ctx, rec, cfg, b.Scope, b.Account); err != nil {
			var d *Denial
			if errors.As(err, &d) && d.Code == api.CodeAuthUnknown {
				return nil // not this node's to judge yet: Apply decides
			}
			return prefixed(rec.Kind, err)
		}
	case *record.AccountRegisterBody:
		_, cfg, err := s.Scope(ctx, b.Scope)
		if err != nil {
			return nil
		}
		if rec.Auth.Kind == record.AuthPasskeyCreate || rec.Auth.Kind == record.AuthPasskeyCreateKeyed {
			// Apply takes an attestation made on an origin of any config
			// the scope had (passkeyorigin.go); a client gets one made on
			// an origin the scope no longer has refused.
			if c, err := s.attestationConfig(ctx, b.Scope, cfg, rec.Auth.WebAuthn); err == nil && c != cfg {
				return deny(api.CodeAuthBadProof, "%s: the passkey was created on an origin (or for a relying party) scope %s no longer has", rec.Kind, b.Scope)
			}
			return nil
		}
		if rec.Auth.Kind != record.AuthSignature && rec.Auth.Kind != record.AuthSignatures {
			return nil
		}
		if err := devSigned(rec, cfg); err != nil {
			return prefixed(rec.Kind, err)
		}
	case *record.CredentialAddBody:
		_, cfg, err := s.Scope(ctx, b.Scope)
		if err != nil {
			return nil
		}
		dev, err := s.isDevSigned(ctx, rec, cfg, b.Scope, true)
		if err != nil {
			return nil
		}
		if !dev {
			// A user's add: as for session.create, Apply takes a proof by
			// any credential ever registered (the add is dead while its
			// maker is); a client asking now with a revoked one is refused.
			if _, err := s.credentialAuthority(ctx, rec, cfg, b.Scope, b.Account); err != nil {
				var d *Denial
				if errors.As(err, &d) && d.Code == api.CodeAuthUnknown {
					return nil // not this node's to judge yet: Apply decides
				}
				return prefixed(rec.Kind, err)
			}
			return nil
		}
		if m, err := s.AccountMode(ctx, b.Scope, b.Account, cfg); err == nil && m != record.ModeDeveloper {
			return deny(api.CodeAuthBadProof, "credential.add: must be proven by one of the account's credentials (account %s is in %s mode)", b.Account, m)
		}
		if err := devSigned(rec, cfg); err != nil {
			return prefixed(rec.Kind, err)
		}
	case *record.AccountModeBody:
		_, cfg, err := s.Scope(ctx, b.Scope)
		if err != nil {
			return nil
		}
		cur, seq, err := s.accountModeSeq(ctx, b.Scope, b.Account, cfg)
		if err != nil {
			return nil
		}
		if b.Mode != cfg.Mode {
			return deny(api.CodeAuthBadProof, "account.mode: scope %s is in %s mode: an account moves only to its scope's current mode", b.Scope, cfg.Mode)
		}
		if b.Seq <= seq {
			return deny(api.CodeAuthConflict, "account.mode: account %s is at mode sequence %d; change %d is stale", b.Account, seq, b.Seq)
		}
		if b.Mode == cur {
			return deny(api.CodeAuthConflict, "account.mode: account %s is already in %s mode", b.Account, cur)
		}
		if cur == record.ModeDeveloper {
			err = devSigned(rec, cfg)
		} else {
			_, err = s.credentialAuthority(ctx, rec, cfg, b.Scope, b.Account)
		}
		if err != nil {
			return prefixed(rec.Kind, err)
		}
	}
	return nil
}

// prefixed names the record kind in a Denial's message.
func prefixed(k record.Kind, err error) error {
	if d, ok := err.(*Denial); ok {
		return &Denial{Code: d.Code, Msg: k.String() + ": " + d.Msg, Missing: d.Missing}
	}
	return err
}
