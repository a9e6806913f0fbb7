package auth

import (
	"bytes"
	"context"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// A developer's key is the developer's (docs/auth.md, "Convergence"):
// a plain key that is, or ever was, a developer key of the scope (its
// base config or any stored scope.update) is never a user's credential,
// and what it signs is read as the developer's. Whether a key is one is a
// function of the stored records, so the rule is applied when the state
// is read (Live, accountModeChain), never when a record is applied: a
// record signed by one plain key that is not a developer key of the base
// config is stored the same way whether or not the update naming its key
// a developer key arrived first (keySignerProof), and read in the
// developer's role once that update is stored. Before this rule, such a
// record was stored as the developer's or as the credential's depending
// on arrival order (TestDevKeyAsCredentialOrders, TestConvergence).

// everDevKeyID reports whether id is the id of a key that is or was a
// developer key of the scope (everDevKey by id: a plain-key credential's
// id is its key's id).
func (s State) everDevKeyID(ctx context.Context, scope string, id []byte) (bool, error) {
	if len(id) != 32 {
		return false, nil
	}
	has := func(c *record.ScopeConfig) bool { return hasDevKeyID(c, id) }
	_, cur, err := s.Scope(ctx, scope)
	if err != nil {
		return false, err
	}
	if has(cur) {
		return true, nil
	}
	base, err := s.baseConfig(ctx, scope, cur)
	if err != nil {
		return false, err
	}
	if has(base) {
		return true, nil
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		if has(c.cfg) {
			return true, nil
		}
	}
	return false, nil
}

// ambiguousSigner returns r's signer if r is signed by one plain key that
// is not a developer key of the scope's base config: a key whose role
// (developer or credential) the record does not name, and which a later
// config may make a developer key. Nil otherwise (several signatures,
// which only developers make; a base developer key, which is never a
// credential; a passkey).
func (s State) ambiguousSigner(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope string) (*record.PublicKey, error) {
	if r.Auth.Kind != record.AuthSignature {
		return nil, nil
	}
	base, err := s.baseConfig(ctx, scope, cfg)
	if err != nil {
		return nil, err
	}
	if base.HasDevKey(r.Auth.Signer) {
		return nil, nil
	}
	return &r.Auth.Signer, nil
}

// keySignerProof checks a credential.add or account.mode signed by one
// plain key k (ambiguousSigner) and returns k's id, what Apply stores as
// its signer whatever k's role: it applies once k is a developer key of
// some config of the scope or a credential ever registered to the
// account (otherwise it is missing: the record making it either may
// arrive), and its signature verifies. Which role k plays is read from
// the stored records (Live, accountModeChain).
func (s State) keySignerProof(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string) ([]byte, error) {
	k := r.Auth.Signer
	id := k.ID()
	if ever, err := s.everDevKey(ctx, scope, k); err != nil {
		return nil, err
	} else if ever {
		if err := r.VerifySignature(); err != nil {
			return nil, deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
		}
		return id[:], nil
	}
	c, err := s.appliedProof(ctx, r, cfg, scope, account)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c.ID, id[:]) {
		return nil, deny(api.CodeAuthBadProof, "credential id is not its key's")
	}
	return id[:], nil
}
