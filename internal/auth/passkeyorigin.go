package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// Which relying party and origins a passkey proof is checked against
// (docs/auth.md, "Convergence").
//
// A WebAuthn response names the origin it was made on (clientDataJSON's
// origin, W3C Web Authentication Level 3 §7.1 step 9 and §7.2 step 13)
// and the relying party (authenticatorData's rpIdHash, §7.1 step 13 and
// §7.2 step 15), and a scope.update can change both. Checked against the
// scope's current config only, a passkey-proven record (a registration,
// credential.add, credential.revoke, session.create, session.revoke or
// account.mode) made on an origin that an update removes would apply on a
// node that stored it before the update and be refused, for good, by one
// that stored the update first (TestConvergence found it:
// TestPasskeyOriginOrders). So Apply checks a passkey proof against any
// config the scope has or had: its current one, its base and every stored
// update, as it takes a developer key the scope ever had (devAuthority).
// The set of stored configs only grows and is the same on every node with
// the same records, so whether the proof applies does not depend on
// order; a proof for an origin no stored config has is a missing
// dependency (the update adding the origin may arrive).
//
// What is checked against the current config only: Authorize (a passkey
// approval, and the session.create proof of a session key, so a session
// made on a removed origin stops approving) and SubmitRecord
// (checkSubmission: a client gets a passkey record from a removed origin
// refused instead of stored). What a malicious node can still push is a
// proof made on an origin the scope removed, with the passkey's consent on
// that origin: the cost of converging without a clock, as for a removed
// developer key.

// passkeyConfig returns the config Apply checks a passkey proof against,
// given cur (the scope's current config) and the proof's origin and
// rpIdHash: cur if they are cur's, else the first config the scope had
// (its base, then its stored updates by seq and id) whose relying party
// and origins take them. None: a Denial with Missing set.
func (s State) passkeyConfig(ctx context.Context, scope string, cur *record.ScopeConfig, origin string, rpIDHash []byte) (*record.ScopeConfig, error) {
	takes := func(c *record.ScopeConfig) bool {
		h := sha256.Sum256([]byte(c.RPID))
		return bytes.Equal(h[:], rpIDHash) && slices.Contains(c.Origins, origin)
	}
	if takes(cur) {
		return cur, nil
	}
	base, err := s.baseConfig(ctx, scope, cur)
	if err != nil {
		return nil, err
	}
	if takes(base) {
		return base, nil
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cands, func(x, y scopeCandidate) int {
		if x.seq != y.seq {
			if x.seq < y.seq {
				return -1
			}
			return 1
		}
		return bytes.Compare(x.id[:], y.id[:])
	})
	for _, c := range cands {
		if takes(c.cfg) {
			return c.cfg, nil
		}
	}
	return nil, &Denial{Code: api.CodeAuthBadProof, Missing: true,
		Msg: fmt.Sprintf("passkey proof is for an origin or relying party no config of scope %s has", scope)}
}

// attestationConfig is passkeyConfig for a navigator.credentials.create()
// response (cur if it does not parse: the verifier says why).
func (s State) attestationConfig(ctx context.Context, scope string, cur *record.ScopeConfig, resp []byte) (*record.ScopeConfig, error) {
	pcc, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		return cur, nil
	}
	return s.passkeyConfig(ctx, scope, cur, pcc.Response.CollectedClientData.Origin, pcc.Response.AttestationObject.AuthData.RPIDHash)
}

// assertionConfig is passkeyConfig for a parsed
// navigator.credentials.get() response.
func (s State) assertionConfig(ctx context.Context, scope string, cur *record.ScopeConfig, par *protocol.ParsedCredentialAssertionData) (*record.ScopeConfig, error) {
	return s.passkeyConfig(ctx, scope, cur, par.Response.CollectedClientData.Origin, par.Response.AuthenticatorData.RPIDHash)
}
