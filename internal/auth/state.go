package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// ErrInvalid is wrapped by every error of Apply for a record that fails
// validation: it is replica.ErrInvalid (the replica.Applier contract), so
// such a record is refused on Submit and by peers, and skipped in
// catch-up.
var ErrInvalid = replica.ErrInvalid

// ErrMissing is wrapped (with ErrInvalid) by Apply's error for a record
// that depends on one this node has not applied yet (its scope, account,
// the credential or config that signed it): it is replica.ErrMissing, so
// the replica keeps the record and applies it again when more records
// arrive.
var ErrMissing = replica.ErrMissing

// Denial is an authorization or validation failure with the API code the
// client sees (api.CodeAuth…). Its Msg never holds secrets. It wraps
// ErrInvalid, and ErrMissing too when Missing is set.
type Denial struct {
	Code int
	Msg  string
	// Missing: the record may become valid once another record is
	// applied (see ErrMissing).
	Missing bool
}

func (d *Denial) Error() string { return "auth: " + d.Msg }

// Unwrap makes a Denial match ErrInvalid, and ErrMissing when Missing.
func (d *Denial) Unwrap() []error {
	if d.Missing {
		return []error{ErrInvalid, ErrMissing}
	}
	return []error{ErrInvalid}
}

// API returns the client-visible error.
func (d *Denial) API() *api.Error { return api.Errorf(d.Code, "%s", d.Msg) }

func deny(code int, format string, args ...any) *Denial {
	return &Denial{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Store namespaces of the auth state. Keys are built from validated ids
// (scope: 32 hex digits; account: record.CheckAccountID's alphabet, which
// has no '/') and hex, so they never collide.
const (
	nsApplied        = "auth.applied"         // record id → kind
	nsScope          = "auth.scope"           // scope → seq ‖ config
	nsAccount        = "auth.account"         // scope/account → how ‖ time ‖ mode [‖ mode seq]
	nsCred           = "auth.cred"            // scope/account/credid → credential
	nsCredIndex      = "auth.credidx"         // scope/credid → account (written by older builds only)
	nsCredOrigin     = "auth.cred.origin"     // scope/account/credid → origin kind ‖ record id ‖ adder credid
	nsScopeBase      = "auth.scope.base"      // scope → seq ‖ config the update chain starts from
	nsScopeUpdate    = "auth.scope.update"    // scope/seq(16 hex)/record id → scope.update record
	nsCredRevoked    = "auth.cred.revoked"    // scope/account/credid → record id
	nsSession        = "auth.session"         // scope/account/sessionid → expiry
	nsSessionRevoked = "auth.session.revoked" // scope/account/sessionid → record id
	nsRegNonce       = "auth.regnonce"        // scope/nonce → account (written by older builds only)
	nsRegistration   = "auth.account.reg"     // scope/account/record id → how ‖ time ‖ mode: every valid registration of the account
	nsNonce          = "auth.nonce"           // scope/nonce → op hash ‖ request ‖ expiry
	nsAccountModeRec = "auth.account.mode"    // scope/account/seq(16 hex)/apply id → mode ‖ proof kind ‖ credential id: every stored account.mode
)

func acctKey(scope, account string) string { return scope + "/" + account }
func subKey(scope, account string, id []byte) string {
	return scope + "/" + account + "/" + hex.EncodeToString(id)
}

// Registration methods stored with an account.
const (
	regPasskey   = 1
	regDelegated = 2
)

// State reads the auth state through a store.Ops (a Store or a
// transaction). It is what Apply and Authorize check against.
type State struct{ ops store.Ops }

func get(ctx context.Context, ops store.Ops, ns, key string) ([]byte, bool, error) {
	v, err := ops.Get(ctx, ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth: store: %w", err)
	}
	return v, true, nil
}

// Scope returns a scope's sequence number and config.
func (s State) Scope(ctx context.Context, scope string) (uint64, *record.ScopeConfig, error) {
	v, ok, err := get(ctx, s.ops, nsScope, scope)
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, deny(api.CodeAuthUnknown, "unknown scope %s", scope)
	}
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("auth: store: corrupt scope %s", scope)
	}
	cfg, err := record.DecodeScopeConfig(v[8:])
	if err != nil {
		return 0, nil, fmt.Errorf("auth: store: corrupt scope %s: %w", scope, err)
	}
	return binary.BigEndian.Uint64(v), &cfg, nil
}

// AccountMode returns an account's mode, a function of the stored
// records only (docs/auth.md, "An account keeps the mode it was
// registered under"):
//
//   - The registration's: the mode of the config in effect at the seq it
//     names (AccountRegisterBody.ConfigSeq; none names seq 0, the scope's
//     base config) on the scope's chain (resolveChain), for the account's
//     winning registration; a passkey self-registration keeps the user's
//     half (developer mode becomes hybrid), so a gateway naming an old
//     config cannot give a user's account to the developer.
//   - Then the account's stored account.mode records, as a chain
//     (accountModeChain): each step is the record with the lowest seq
//     above the current step's that is valid against the current mode.
//
// An account stored by a build that did not keep registrations has the
// mode it stored, or, if none, the scope's base config's (registeredMode).
func (s State) AccountMode(ctx context.Context, scope, account string, cfg *record.ScopeConfig) (record.Mode, error) {
	m, _, err := s.accountModeSeq(ctx, scope, account, cfg)
	return m, err
}

// accountModeSeq returns the account's mode (AccountMode) and the seq of
// the account.mode record that set it (0 if none).
func (s State) accountModeSeq(ctx context.Context, scope, account string, cfg *record.ScopeConfig) (record.Mode, uint64, error) {
	v, ok, err := get(ctx, s.ops, nsAccount, acctKey(scope, account))
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, deny(api.CodeAuthUnknown, "unknown account %s in scope %s", account, scope)
	}
	m, seq, err := s.registeredMode(ctx, scope, account, v, cfg)
	if err != nil {
		return 0, 0, err
	}
	return s.accountModeChain(ctx, scope, account, m, seq)
}

// registeredMode is the mode an account starts from before its
// account.mode records (AccountMode), and the mode seq it starts at.
func (s State) registeredMode(ctx context.Context, scope, account string, v []byte, cfg *record.ScopeConfig) (record.Mode, uint64, error) {
	if len(v) >= 18 {
		// An account.mode applied by an earlier build of this
		// version, which wrote the mode into the account.
		m := record.Mode(v[9])
		if m < record.ModeUser || m > record.ModeHybrid {
			return 0, 0, fmt.Errorf("auth: store: corrupt account %s", account)
		}
		return m, binary.BigEndian.Uint64(v[10:18]), nil
	}
	win, err := s.winningRegistration(ctx, scope, account)
	if err != nil {
		return 0, 0, err
	}
	if win != nil {
		rv, ok, err := get(ctx, s.ops, nsRegistration, subKey(scope, account, win))
		if err != nil {
			return 0, 0, err
		}
		if ok && len(rv) >= 10 {
			var seq uint64 // no ConfigSeq: the base config
			if len(rv) >= 18 {
				seq = binary.BigEndian.Uint64(rv[10:18])
			}
			m, err := s.modeAt(ctx, scope, seq)
			if err == nil && rv[0] == regPasskey && m == record.ModeDeveloper {
				m = record.ModeHybrid
			}
			return m, 0, err
		}
	}
	if len(v) >= 10 {
		m := record.Mode(v[9])
		if m < record.ModeUser || m > record.ModeHybrid {
			return 0, 0, fmt.Errorf("auth: store: corrupt account %s", account)
		}
		return m, 0, nil
	}
	// Stored before accounts recorded their mode: the mode of the scope's
	// base config, which no record changes (the scope's current config
	// for a scope stored without one: its first update stores that as its
	// base). Builds before this one pinned such an account, at the first
	// update that changed the scope's mode on each node, to the mode
	// before that update, which is always the base config's (every
	// earlier update left the mode as it was); they wrote it into the
	// account, read above. So the mode is the same in every order
	// (TestLegacyAccountModeOrders), without rewriting every account of
	// the scope in the transaction of a mode change.
	base, err := s.baseConfig(ctx, scope, cfg)
	if err != nil {
		return 0, 0, err
	}
	return base.Mode, 0, nil
}

// Proof kinds of a stored account.mode (nsAccountModeRec's second byte).
const (
	modeByDeveloper  = 1 // signed by keys that are or were developer keys of the scope
	modeByCredential = 2 // proven by a credential registered to the account (its id follows)
)

// accountModeChain applies the account's stored account.mode records to
// mode m at seq: in order of seq, then record id, a record with a greater
// seq than the current step's that changes the mode is the next step if
// it is valid against the current mode: while the account is in developer
// mode, signed by developer keys (the developer holds such an account);
// while it has a user's half (user or hybrid), proven by one of its live
// credentials (the user consents). The result depends on the set of
// stored records only, and a consent is used once (its seq is passed).
func (s State) accountModeChain(ctx context.Context, scope, account string, m record.Mode, seq uint64) (record.Mode, uint64, error) {
	es, err := s.ops.List(ctx, nsAccountModeRec, acctKey(scope, account)+"/", 0)
	if err != nil {
		return 0, 0, fmt.Errorf("auth: store: %w", err)
	}
	for _, e := range es {
		rest := e.Key[len(acctKey(scope, account))+1:]
		if len(rest) < 17 || len(e.Value) < 2 {
			return 0, 0, fmt.Errorf("auth: store: corrupt account mode record")
		}
		var rseq uint64
		if _, err := fmt.Sscanf(rest[:16], "%016x", &rseq); err != nil {
			return 0, 0, fmt.Errorf("auth: store: corrupt account mode record")
		}
		next := record.Mode(e.Value[0])
		if rseq <= seq || next == m {
			continue
		}
		switch e.Value[1] {
		case modeByDeveloper:
			if m != record.ModeDeveloper {
				continue
			}
		case modeByCredential:
			if dev, err := s.everDevKeyID(ctx, scope, e.Value[2:]); err != nil {
				return 0, 0, err
			} else if dev {
				// Signed by a key that is or was a developer key: the
				// developer's, whenever its update arrived (devrole.go).
				if m != record.ModeDeveloper {
					continue
				}
				break
			}
			if m == record.ModeDeveloper {
				continue
			}
			cur := m
			if live, err := s.live(ctx, scope, account, e.Value[2:], &cur); err != nil {
				return 0, 0, err
			} else if !live {
				continue
			}
		default:
			continue
		}
		m, seq = next, rseq
	}
	return m, seq, nil
}

// modeAt returns the mode of the config in effect at seq on the scope's
// chain: the last step at or below seq (the base config if none).
func (s State) modeAt(ctx context.Context, scope string, seq uint64) (record.Mode, error) {
	chain, err := s.chain(ctx, scope)
	if err != nil {
		return 0, err
	}
	m := chain[0].cfg.Mode
	for _, st := range chain {
		if st.seq <= seq {
			m = st.cfg.Mode
		}
	}
	return m, nil
}

// chain returns the scope's chain of configs, from its base config to
// the one in effect (resolveChain).
func (s State) chain(ctx context.Context, scope string) ([]chainStep, error) {
	seq, cur, err := s.Scope(ctx, scope)
	if err != nil {
		return nil, err
	}
	base, ok, err := get(ctx, s.ops, nsScopeBase, scope)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []chainStep{{seq, cur}}, nil
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cands, func(x, y scopeCandidate) int {
		if c := cmp.Compare(x.seq, y.seq); c != 0 {
			return c
		}
		return bytes.Compare(x.id[:], y.id[:])
	})
	return resolveChain(base, cands)
}

// HasAccount reports whether the account is registered.
func (s State) HasAccount(ctx context.Context, scope, account string) (bool, error) {
	_, ok, err := get(ctx, s.ops, nsAccount, acctKey(scope, account))
	return ok, err
}

func (s State) needAccount(ctx context.Context, scope, account string) error {
	ok, err := s.HasAccount(ctx, scope, account)
	if err != nil {
		return err
	}
	if !ok {
		return deny(api.CodeAuthUnknown, "unknown account %s in scope %s", account, scope)
	}
	return nil
}

// Credentials returns the account's live credentials (see Live).
func (s State) Credentials(ctx context.Context, scope, account string) ([]record.Credential, error) {
	es, err := s.ops.List(ctx, nsCred, acctKey(scope, account)+"/", 0)
	if err != nil {
		return nil, fmt.Errorf("auth: store: %w", err)
	}
	var out []record.Credential
	for _, e := range es {
		c, err := record.DecodeCredential(e.Value)
		if err != nil {
			return nil, fmt.Errorf("auth: store: corrupt credential: %w", err)
		}
		if live, err := s.Live(ctx, scope, account, c.ID); err != nil {
			return nil, err
		} else if live {
			out = append(out, c)
		}
	}
	return out, nil
}

// Credential origins (nsCredOrigin's first byte).
const (
	originRoot       = 0 // registered with the account (or, by older builds, added by a developer key)
	originCredential = 1 // added by another credential of the account
	originDeveloper  = 2 // added by a developer key: approves only in developer mode
)

// originRank orders origin kinds for credentialWrites: a registration, then a
// developer's add, then an add by a credential.
func originRank(kind byte) int {
	switch kind {
	case originRoot:
		return 0
	case originDeveloper:
		return 1
	}
	return 2
}

// Live reports whether a credential of the account approves: it was
// registered to the account, is not revoked, and, if another credential
// added it, that one is live too. Liveness is computed from the stored
// records alone, never from the order they were applied in: a revocation
// signed by a credential that is revoked later still applies, and a
// credential that a revoked credential added (before or after the
// revocation, which no node can tell apart) is dead with it. Of several
// adds of one credential, one is its origin (credentialWrites).
func (s State) Live(ctx context.Context, scope, account string, id []byte) (bool, error) {
	return s.live(ctx, scope, account, id, nil)
}

// live is Live with the account's mode, if known (accountModeChain asks
// under a mode it is resolving; nil: AccountMode).
func (s State) live(ctx context.Context, scope, account string, id []byte, known *record.Mode) (bool, error) {
	// inDeveloperMode reports whether the account is in developer mode
	// and, if keys is not empty (ids of the developer keys that added a
	// credential), all of them are developer keys of the scope's current
	// config: a developer's add lives through the keys that made it.
	inDeveloperMode := func(keys []byte) (bool, error) {
		_, cfg, err := s.Scope(ctx, scope)
		if err != nil {
			return false, err
		}
		for ; len(keys) >= 32; keys = keys[32:] {
			if !hasDevKeyID(cfg, keys[:32]) {
				return false, nil
			}
		}
		if known != nil {
			return *known == record.ModeDeveloper, nil
		}
		m, err := s.AccountMode(ctx, scope, account, cfg)
		return err == nil && m == record.ModeDeveloper, err
	}
	// A key that is or was a developer key is never a user's credential
	// (devrole.go).
	if dev, err := s.everDevKeyID(ctx, scope, id); err != nil || dev {
		return false, err
	}
	seen := map[string]bool{}
	for {
		k := subKey(scope, account, id)
		if seen[k] {
			return false, nil // a cycle of adds roots nowhere
		}
		seen[k] = true
		if _, ok, err := get(ctx, s.ops, nsCred, k); err != nil || !ok {
			return false, err
		}
		if _, revoked, err := get(ctx, s.ops, nsCredRevoked, k); err != nil || revoked {
			return false, err
		}
		o, ok, err := get(ctx, s.ops, nsCredOrigin, k)
		if err != nil {
			return false, err
		}
		if !ok { // no origin: stored by an older build
			return true, nil
		}
		if o[0] == originDeveloper {
			if len(o) < 33 {
				return false, fmt.Errorf("auth: store: corrupt credential origin")
			}
			return inDeveloperMode(o[33:])
		}
		if o[0] == originRoot {
			// Registered with the account, or added by a developer key:
			// live, unless by a registration that is not the account's
			// (another registration of the id has a lower record id).
			if len(o) < 33 {
				return false, fmt.Errorf("auth: store: corrupt credential origin")
			}
			_, reg, err := get(ctx, s.ops, nsRegistration, subKey(scope, account, o[1:33]))
			if err != nil {
				return false, err
			}
			if reg {
				// Live only if its registration is the account's.
				win, err := s.winningRegistration(ctx, scope, account)
				if err != nil {
					return false, err
				}
				return bytes.Equal(win, o[1:33]), nil
			}
			// A registration applied by an older build (its applied
			// record id is the registration's), or a developer's add
			// stored by an older build, which approves only while the
			// account is in developer mode.
			k, applied, err := get(ctx, s.ops, nsApplied, hex.EncodeToString(o[1:33]))
			if err != nil {
				return false, err
			}
			if applied && len(k) == 1 && record.Kind(k[0]) == record.AccountRegister {
				return true, nil
			}
			return inDeveloperMode(nil)
		}
		if len(o) < 33 {
			return false, fmt.Errorf("auth: store: corrupt credential origin")
		}
		if dev, err := s.everDevKeyID(ctx, scope, o[33:]); err != nil {
			return false, err
		} else if dev {
			// Added by a key that is or was a developer key: a
			// developer's add (devrole.go).
			return inDeveloperMode(o[33:])
		}
		id = o[33:]
	}
}

// hasDevKeyID reports whether cfg has a developer key whose id is id.
func hasDevKeyID(cfg *record.ScopeConfig, id []byte) bool {
	for _, k := range cfg.DevKeys {
		if kid := k.ID(); bytes.Equal(kid[:], id) {
			return true
		}
	}
	return false
}

// registered returns one of the account's credentials, whether or not it
// is live: what Apply checks a revocation's, credential.add's or
// session.create's proof against, so that applying them does not depend
// on whether a revocation of their signer arrived first. A credential not
// (yet) registered to the account is a missing dependency.
func (s State) registered(ctx context.Context, scope, account string, id []byte) (*record.Credential, error) {
	v, ok, err := get(ctx, s.ops, nsCred, subKey(scope, account, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, deny(api.CodeAuthUnknown, "unknown credential for account %s", account)
	}
	c, err := record.DecodeCredential(v)
	if err != nil {
		return nil, fmt.Errorf("auth: store: corrupt credential: %w", err)
	}
	return &c, nil
}

// credential returns one of the account's credentials, with a Denial if
// it is unknown or not live (revoked, or added by a credential that is
// not live).
func (s State) credential(ctx context.Context, scope, account string, id []byte) (*record.Credential, error) {
	k := subKey(scope, account, id)
	if dev, err := s.everDevKeyID(ctx, scope, id); err != nil {
		return nil, err
	} else if dev {
		return nil, deny(api.CodeAuthBadProof, "a developer key of the scope is not a user's credential")
	}
	if _, ok, err := get(ctx, s.ops, nsCred, k); err != nil {
		return nil, err
	} else if ok {
		if live, err := s.Live(ctx, scope, account, id); err != nil {
			return nil, err
		} else if !live {
			return nil, deny(api.CodeAuthRevoked, "credential of account %s is revoked", account)
		}
	} else if _, revoked, err := get(ctx, s.ops, nsCredRevoked, k); err != nil {
		return nil, err
	} else if revoked {
		return nil, deny(api.CodeAuthRevoked, "credential of account %s is revoked", account)
	}
	v, ok, err := get(ctx, s.ops, nsCred, k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, deny(api.CodeAuthUnknown, "unknown credential for account %s", account)
	}
	c, err := record.DecodeCredential(v)
	if err != nil {
		return nil, fmt.Errorf("auth: store: corrupt credential: %w", err)
	}
	return &c, nil
}

// SessionRevoked reports whether a session key was revoked.
func (s State) SessionRevoked(ctx context.Context, scope, account string, id [32]byte) (bool, error) {
	_, ok, err := get(ctx, s.ops, nsSessionRevoked, subKey(scope, account, id[:]))
	return ok, err
}

// CredentialProof is a proof by one of an account's credentials over a
// message: a plain-key signature, or a WebAuthn assertion whose challenge
// is SHA-256(message).
type CredentialProof struct {
	Signer   *record.PublicKey // plain key: the key (its credential id is Signer.ID())
	Sig      []byte
	WebAuthn []byte // passkey: navigator.credentials.get() response JSON
}

// verifyCredential checks p over msg against the account's live
// credentials and returns the credential used.
func (s State) verifyCredential(ctx context.Context, cfg *record.ScopeConfig, scope, account string, p CredentialProof, msg []byte) (*record.Credential, error) {
	return s.verifyProof(ctx, cfg, scope, account, p, msg, s.credential)
}

// verifyProof checks p over msg against the credential that lookup
// returns (State.credential: live ones; State.registered: any ever
// registered to the account), a passkey assertion for cfg's relying
// party and origins.
func (s State) verifyProof(ctx context.Context, cfg *record.ScopeConfig, scope, account string, p CredentialProof, msg []byte,
	lookup func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error)) (*record.Credential, error) {
	return s.checkProof(ctx, cfg, scope, account, p, msg, lookup, false)
}

// checkProof is verifyProof; with anyConfig (Apply), a passkey assertion
// is checked for the relying party and origins of any config the scope
// has or had (passkeyConfig), not cfg's only.
func (s State) checkProof(ctx context.Context, cfg *record.ScopeConfig, scope, account string, p CredentialProof, msg []byte,
	lookup func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error), anyConfig bool) (*record.Credential, error) {
	switch {
	case p.Signer != nil:
		// The base config's keys (no record changes it, so that Apply
		// reads the same in any order); keys of later configs are never
		// live credentials (Live, devrole.go).
		base, err := s.baseConfig(ctx, scope, cfg)
		if err != nil {
			return nil, err
		}
		if base.HasDevKey(*p.Signer) {
			// Never the user's, even if an older build stored it as a
			// credential (credentialWrites refuses it now).
			return nil, deny(api.CodeAuthBadProof, "a developer key of the scope is not a user's credential")
		}
		id := p.Signer.ID()
		c, err := lookup(ctx, scope, account, id[:])
		if err != nil {
			return nil, err
		}
		if c.Kind != record.CredKey {
			return nil, deny(api.CodeAuthBadProof, "credential is not a plain key")
		}
		if err := p.Signer.Verify(msg, p.Sig); err != nil {
			return nil, deny(api.CodeAuthBadProof, "credential signature does not verify (signed over another payload?)")
		}
		return c, nil
	case len(p.WebAuthn) > 0:
		id, par, err := assertionCredentialID(p.WebAuthn)
		if err != nil {
			return nil, deny(api.CodeAuthBadProof, "%v", err)
		}
		c, err := lookup(ctx, scope, account, id)
		if err != nil {
			return nil, err
		}
		if c.Kind != record.CredPasskey {
			return nil, deny(api.CodeAuthBadProof, "credential is not a passkey")
		}
		if anyConfig {
			if cfg, err = s.assertionConfig(ctx, scope, cfg, par); err != nil {
				return nil, err
			}
		}
		if err := verifyAssertion(cfg, par, c.PublicKey, challengeOf(msg)); err != nil {
			return nil, deny(api.CodeAuthBadProof, "%v", err)
		}
		return c, nil
	}
	return nil, deny(api.CodeAuthBadProof, "empty credential proof")
}

// Applier is the auth state machine: it implements replica.Applier.
type Applier struct {
	// Origins is the cluster's rule on scope origins (the zero value:
	// development). Every node of a cluster must have the same.
	Origins OriginPolicy
	// Admission is the cluster's rule on who may create scopes (the zero
	// value: open). Every node of a cluster must have the same.
	Admission AdmissionPolicy
}

// Apply validates rec (a record.Record encoding) against the state read
// through tx and writes its effect through tx. It checks the record's
// signature or passkey proof and its chain of authority: a scope is
// created by one of its own developer keys and updated by a current one;
// an account is registered by a passkey attestation whose challenge
// commits to the registration, or by a developer key (delegated); a
// credential or session is added or revoked by the account's credentials
// (or a developer key where the record kind allows it). Revocations are
// final, and the state is built to be the same whatever order records
// are applied in (package doc; docs/auth.md, "Convergence"). A record
// that depends on one not applied yet returns an error wrapping
// ErrMissing as well as ErrInvalid.
//
// Applying a record whose id (kind and body) is already applied writes
// nothing and returns an error wrapping replica.ErrDuplicate, whatever its
// proof: a second proof of an applied body is dropped, not stored or
// replicated. A record that fails validation returns an error wrapping ErrInvalid (a
// *Denial) and writes nothing: every check runs before the first write.
// Apply does not look at the clock, so that a node catching up accepts
// the same records as the others did; freshness is checked where records
// are submitted.
func (a Applier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	r, err := record.Unmarshal(rec)
	if err != nil {
		return deny(api.CodeAuthBadProof, "%v", err)
	}
	id := applyID(r)
	idKey := hex.EncodeToString(id[:])
	if _, done, err := get(ctx, tx, nsApplied, idKey); err != nil {
		return err
	} else if done {
		return fmt.Errorf("auth: %s %x: %w", r.Kind, id[:8], replica.ErrDuplicate)
	}
	body, err := record.DecodeBody(r.Kind, r.Body)
	if err != nil {
		return deny(api.CodeAuthBadProof, "%s: %v", r.Kind, err)
	}
	st := State{tx}
	var writes []kv
	switch b := body.(type) {
	case *record.ScopeCreateBody:
		if err = a.Origins.check(&b.Config); err == nil {
			err = a.Admission.checkCreate(r)
		}
		if err == nil {
			writes, err = st.scopeCreate(ctx, r, b)
		}
	case *record.ScopeUpdateBody:
		if err = a.Origins.check(&b.Config); err == nil {
			writes, err = st.scopeUpdate(ctx, r, b)
		}
	case *record.AccountRegisterBody:
		writes, err = st.accountRegister(ctx, r, b)
	case *record.CredentialAddBody:
		writes, err = st.credentialAdd(ctx, r, b)
	case *record.CredentialRevokeBody:
		writes, err = st.credentialRevoke(ctx, r, b, id)
	case *record.SessionCreateBody:
		writes, err = st.sessionCreate(ctx, r, b)
	case *record.SessionRevokeBody:
		writes, err = st.sessionRevoke(ctx, r, b, id)
	case *record.AccountModeBody:
		writes, err = st.accountMode(ctx, r, b)
	}
	if err != nil {
		var d *Denial
		if errors.As(err, &d) {
			// An unknown scope, account or credential may be one that
			// has not arrived yet: the replica keeps the record and
			// tries it again (ErrMissing).
			return &Denial{Code: d.Code, Msg: r.Kind.String() + ": " + d.Msg, Missing: d.Missing || d.Code == api.CodeAuthUnknown}
		}
		return err
	}
	writes = append(writes, kv{nsApplied, idKey, []byte{byte(r.Kind)}})
	// The account's or the scope's epoch: what Authorize's cache is
	// checked against (cache.go).
	ew, err := st.epochWrites(ctx, body)
	if err != nil {
		return err
	}
	writes = append(writes, ew...)
	for _, w := range writes {
		if err := tx.Put(ctx, w.ns, w.key, w.val); err != nil {
			return fmt.Errorf("auth: store: %w", err)
		}
	}
	return nil
}

// applyID identifies what Apply applies: the record's id (kind and body),
// and for a scope.update also the keys that signed it (not their
// signatures). Whether a stored update authorizes another, and is
// authorized itself, depends on who signed it; with the body's id alone, a
// second proof by other keys would be dropped as a duplicate, and nodes
// that received the proofs in other orders would keep different ones.
// So each signer set's proof of an update is its own candidate
// (scopeUpdate); a copy by the same keys is still a duplicate.
func applyID(r *record.Record) [32]byte {
	id := r.ID()
	var w record.Writer
	switch r.Kind {
	case record.ScopeUpdate:
		w.String("keymesh/auth/scope-update-signers/v1")
		w.Fixed(id[:])
		for _, k := range r.Signers() { // canonical order (record.Unmarshal)
			k.Encode(&w)
		}
	case record.CredentialAdd, record.AccountMode:
		// Which credential added a credential decides whether it is live
		// (Live), so one add body proven by two credentials is two
		// candidates, and the credential's origin is the least of them
		// (credentialWrites), whatever order they arrive in. Likewise who
		// proved an account.mode decides whether it is valid
		// (accountModeChain): each proof is its own candidate.
		w.String("keymesh/auth/credential-add-signer/v1")
		w.Fixed(id[:])
		for _, k := range r.Signers() {
			k.Encode(&w)
		}
		if r.Auth.Kind == record.AuthPasskeyGet {
			if cid, _, err := assertionCredentialID(r.Auth.WebAuthn); err == nil {
				w.Var(cid)
			}
		}
	default:
		return id
	}
	return sha256.Sum256(w.Bytes())
}

type kv struct {
	ns, key string
	val     []byte
}

func scopeValue(seq uint64, cfg *record.ScopeConfig) []byte {
	return append(binary.BigEndian.AppendUint64(nil, seq), cfg.Marshal()...)
}

// devSigned checks that r is signed by one of cfg's developer keys, or by
// several (AuthSignatures), every one of them a developer key.
func devSigned(r *record.Record, cfg *record.ScopeConfig) error {
	_, err := devSigners(r, cfg)
	return err
}

// devSigners checks that every signature of r is by a developer key of
// cfg and verifies, and returns how many distinct keys signed.
func devSigners(r *record.Record, cfg *record.ScopeConfig) (int, error) {
	if r.Auth.Kind != record.AuthSignature && r.Auth.Kind != record.AuthSignatures {
		return 0, deny(api.CodeAuthBadProof, "must be signed by a developer key")
	}
	ks := r.Signers()
	for _, k := range ks {
		if !cfg.HasDevKey(k) {
			return 0, deny(api.CodeAuthBadProof, "signer is not a developer key of the scope")
		}
	}
	if err := r.VerifySignature(); err != nil {
		return 0, deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
	}
	return len(ks), nil // distinct: record.Unmarshal refuses a repeated signer
}

// devKeysChange reports whether next changes cur's developer keys (as a
// set) or their quorum.
func devKeysChange(cur, next *record.ScopeConfig) bool {
	if cur.Quorum() != next.Quorum() || len(cur.DevKeys) != len(next.DevKeys) {
		return true
	}
	for _, k := range next.DevKeys {
		if !cur.HasDevKey(k) {
			return true
		}
	}
	for _, k := range cur.DevKeys {
		if !next.HasDevKey(k) {
			return true
		}
	}
	return false
}

func (s State) scopeCreate(ctx context.Context, r *record.Record, b *record.ScopeCreateBody) ([]kv, error) {
	if err := devSigned(r, &b.Config); err != nil {
		return nil, err
	}
	id := b.ScopeID()
	if _, ok, err := get(ctx, s.ops, nsScope, id); err != nil {
		return nil, err
	} else if ok {
		return nil, deny(api.CodeAuthConflict, "scope %s already exists", id)
	}
	v := scopeValue(0, &b.Config)
	return []kv{{nsScope, id, v}, {nsScopeBase, id, v}}, nil
}

// scopeUpdate stores a scope.update and makes the scope's config the end
// of its update chain (resolveScope), which depends on the set of stored
// updates only, not on the order they arrived in. An update is stored
// when the scope's base config or a stored update with a lower seq
// authorizes it (so the stored set is the same on every node once they
// have the same records); otherwise it is refused as missing a dependency
// (ErrMissing), and the replica tries it again when more records arrive.
// A stored update need not be on the chain: one signed by a key that a
// quorum removed at a lower seq is stored and has no effect.
func (s State) scopeUpdate(ctx context.Context, r *record.Record, b *record.ScopeUpdateBody) ([]kv, error) {
	prevSeq, prev, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	base, ok, err := get(ctx, s.ops, nsScopeBase, b.Scope)
	if err != nil {
		return nil, err
	}
	var ws []kv
	if !ok {
		// A scope stored by an older build: its chain starts at its
		// current config.
		base = scopeValue(prevSeq, prev)
		ws = append(ws, kv{nsScopeBase, b.Scope, base})
	}
	if err := r.VerifySignature(); err != nil {
		return nil, deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
	}
	id := applyID(r)
	self := scopeCandidate{seq: b.Seq, id: id, rec: r, cfg: &b.Config}
	cands, err := s.scopeCandidates(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	cands = append(cands, self)
	slices.SortFunc(cands, func(x, y scopeCandidate) int {
		if c := cmp.Compare(x.seq, y.seq); c != 0 {
			return c
		}
		return bytes.Compare(x.id[:], y.id[:])
	})
	seq, cfg, err := resolveScope(base, cands)
	if err != nil {
		return nil, err
	}
	if ok, err := authorizedByEarlier(base, cands, self); err != nil {
		return nil, err
	} else if !ok {
		// Not (yet) an update of the scope's chain. The codes tell a
		// client what it most likely did.
		if n, err := devSigners(r, prev); err != nil {
			return nil, &Denial{Code: api.CodeAuthBadProof, Msg: err.(*Denial).Msg, Missing: true}
		} else if devKeysChange(prev, &b.Config) && n < prev.Quorum() {
			return nil, &Denial{Code: api.CodeAuthBadProof, Missing: true, Msg: fmt.Sprintf("changing the developer keys of scope %s takes %d of its %d developer keys; signed by %d", b.Scope, prev.Quorum(), len(prev.DevKeys), n)}
		}
		return nil, &Denial{Code: api.CodeAuthConflict, Missing: true, Msg: fmt.Sprintf("scope %s is at sequence %d; update %d is stale", b.Scope, prevSeq, b.Seq)}
	}
	// Accounts stored before accounts recorded their mode keep the base
	// config's (registeredMode).
	ws = append(ws,
		kv{nsScopeUpdate, fmt.Sprintf("%s/%016x/%x", b.Scope, b.Seq, id[:]), r.Marshal()},
		kv{nsScope, b.Scope, scopeValue(seq, cfg)})
	return ws, nil
}

// scopeCandidate is one stored scope.update.
type scopeCandidate struct {
	seq uint64
	id  [32]byte
	rec *record.Record
	cfg *record.ScopeConfig
}

// scopeCandidates returns the scope's stored updates.
func (s State) scopeCandidates(ctx context.Context, scope string) ([]scopeCandidate, error) {
	es, err := s.ops.List(ctx, nsScopeUpdate, scope+"/", 0)
	if err != nil {
		return nil, fmt.Errorf("auth: store: %w", err)
	}
	out := make([]scopeCandidate, 0, len(es))
	for _, e := range es {
		r, err := record.Unmarshal(e.Value)
		if err != nil {
			return nil, fmt.Errorf("auth: store: corrupt scope update: %w", err)
		}
		b, err := record.DecodeBody(r.Kind, r.Body)
		if err != nil {
			return nil, fmt.Errorf("auth: store: corrupt scope update: %w", err)
		}
		ub, ok := b.(*record.ScopeUpdateBody)
		if !ok {
			return nil, fmt.Errorf("auth: store: corrupt scope update")
		}
		out = append(out, scopeCandidate{seq: ub.Seq, id: applyID(r), rec: r, cfg: &ub.Config})
	}
	return out, nil
}

// authorizes reports whether cfg authorizes the update r to next: every
// signer is a developer key of cfg and, if next changes the developer
// keys or their quorum, cfg's quorum of them signed.
func authorizes(cfg *record.ScopeConfig, r *record.Record, next *record.ScopeConfig) bool {
	n, err := devSigners(r, cfg)
	return err == nil && (!devKeysChange(cfg, next) || n >= cfg.Quorum())
}

// authorizedByEarlier reports whether the base config or a candidate
// with a lower seq than u authorizes u.
func authorizedByEarlier(base []byte, cands []scopeCandidate, u scopeCandidate) (bool, error) {
	c, err := record.DecodeScopeConfig(base[8:])
	if err != nil {
		return false, fmt.Errorf("auth: store: corrupt scope base: %w", err)
	}
	if binary.BigEndian.Uint64(base) < u.seq && authorizes(&c, u.rec, u.cfg) {
		return true, nil
	}
	for _, p := range cands {
		if p.seq < u.seq && authorizes(p.cfg, u.rec, u.cfg) {
			return true, nil
		}
	}
	return false, nil
}

// resolveScope returns the end of a scope's update chain: starting from
// base (seq ‖ config: the scope's creation, or the config an older build
// stored), each step takes, among the updates with a greater seq that the
// current config authorizes, the one with the lowest seq, ties broken by
// the lowest record id. Every update is thus checked against the config
// it replaces, a key removed from the config signs nothing after it, and
// the result is a function of the set of updates (cands, sorted by seq
// then id), whatever order they were stored in.
func resolveScope(base []byte, cands []scopeCandidate) (seq uint64, cfg *record.ScopeConfig, err error) {
	ch, err := resolveChain(base, cands)
	if err != nil {
		return 0, nil, err
	}
	last := ch[len(ch)-1]
	return last.seq, last.cfg, nil
}

// chainStep is one config of a scope's chain.
type chainStep struct {
	seq uint64
	cfg *record.ScopeConfig
}

// resolveChain returns every step of the chain resolveScope ends, the
// base first.
func resolveChain(base []byte, cands []scopeCandidate) ([]chainStep, error) {
	if len(base) < 8 {
		return nil, fmt.Errorf("auth: store: corrupt scope base")
	}
	c, err := record.DecodeScopeConfig(base[8:])
	if err != nil {
		return nil, fmt.Errorf("auth: store: corrupt scope base: %w", err)
	}
	seq, cfg := binary.BigEndian.Uint64(base), &c
	out := []chainStep{{seq, cfg}}
	for {
		step := -1
		for i := range cands {
			if cands[i].seq > seq && authorizes(cfg, cands[i].rec, cands[i].cfg) {
				step = i
				break
			}
		}
		if step < 0 {
			return out, nil
		}
		seq, cfg = cands[step].seq, cands[step].cfg
		out = append(out, chainStep{seq, cfg})
	}
}

// everDevKey reports whether k is a developer key of the scope's
// creation (or base) config or of any stored update (each authorized by
// an earlier one): the keys whose revocations apply whatever happens to
// them later.
func (s State) everDevKey(ctx context.Context, scope string, k record.PublicKey) (bool, error) {
	_, cur, err := s.Scope(ctx, scope)
	if err != nil {
		return false, err
	}
	if cur.HasDevKey(k) {
		return true, nil
	}
	if base, ok, err := get(ctx, s.ops, nsScopeBase, scope); err != nil {
		return false, err
	} else if ok && len(base) >= 8 {
		if c, err := record.DecodeScopeConfig(base[8:]); err == nil && c.HasDevKey(k) {
			return true, nil
		}
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		if c.cfg.HasDevKey(k) {
			return true, nil
		}
	}
	return false, nil
}

func (s State) accountRegister(ctx context.Context, r *record.Record, b *record.AccountRegisterBody) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	var (
		cred record.Credential
		how  byte
	)
	switch r.Auth.Kind {
	case record.AuthSignature, record.AuthSignatures:
		// Keys that are or were developer keys of the scope (missing
		// otherwise: the update adding the key may arrive), so that
		// applying it does not depend on whether an update removing the
		// key arrived first. SubmitRecord takes current keys only.
		if err := s.devAuthority(ctx, r, cfg, b.Scope, true); err != nil {
			return nil, err
		}
		how = regDelegated
		if b.RegistrationKey != nil {
			return nil, deny(api.CodeAuthBadProof, "a delegated registration has no registration key")
		}
		if record.IsDerivedAccountID(b.Account) {
			// Those ids belong to the holders of registration keys.
			return nil, deny(api.CodeAuthBadProof, "account ids starting with %q are taken by passkey self-registration only", record.DerivedAccountPrefix)
		}
		if b.Credential != nil {
			if b.Credential.Kind != record.CredKey {
				return nil, deny(api.CodeAuthBadProof, "a delegated registration can only carry a plain-key credential")
			}
			cred = *b.Credential
		}
	case record.AuthPasskeyCreate, record.AuthPasskeyCreateKeyed:
		// Self-registration: no one vouches for who gets the id, so the
		// id is the registration key's (record.DerivedAccountID), and
		// only that key's holder signs a registration for it. A chosen
		// id (alice) is first come, first served, so anyone (a node
		// that sees alice's registration in flight) could take it.
		if b.RegistrationKey == nil || b.Account != record.DerivedAccountID(*b.RegistrationKey) {
			return nil, deny(api.CodeAuthBadProof, "a passkey self-registration takes the account id of its registration key (%s…); a chosen id is registered by the developer", record.DerivedAccountPrefix)
		}
		if ok, err := s.everSelfRegistration(ctx, b.Scope, cfg); err != nil {
			return nil, err
		} else if !ok {
			// Missing: an update to user or hybrid mode may arrive.
			return nil, &Denial{Code: api.CodeAuthBadProof, Missing: true, Msg: fmt.Sprintf("scope %s is in developer mode: its accounts are registered by the developer", b.Scope)}
		}
		// For the relying party and origins of any config the scope has
		// or had (passkeyorigin.go).
		acfg, err := s.attestationConfig(ctx, b.Scope, cfg, r.Auth.WebAuthn)
		if err != nil {
			return nil, err
		}
		if cred, err = passkeyRegistration(acfg, r, b); err != nil {
			return nil, err
		}
		how = regPasskey
	default:
		return nil, deny(api.CodeAuthBadProof, "must be a passkey attestation or a developer signature")
	}
	rid := r.ID()
	acct := append([]byte{how}, binary.BigEndian.AppendUint64(nil, uint64(b.Time))...)
	acct = append(acct, 0) // the mode is derived from the scope's chain (AccountMode), not stored
	reg := bytes.Clone(acct)
	if b.ConfigSeq != nil {
		// The account's mode is derived from the scope's configs from
		// this seq on (AccountMode), the same on every node.
		reg = binary.BigEndian.AppendUint64(reg, *b.ConfigSeq)
	}
	ws := []kv{{nsRegistration, subKey(b.Scope, b.Account, rid[:]), reg}}
	// Several valid registrations of one id (its registration key's
	// holder, or the developer, made two): each is stored, and the one
	// with the lowest record id is the account's whatever order they
	// arrive in; the others' credentials are stored dead (Live).
	v, had, err := get(ctx, s.ops, nsAccount, acctKey(b.Scope, b.Account))
	if err != nil {
		return nil, err
	}
	// The scope's account count and order (accountquota.go).
	qw, err := s.accountCountWrites(ctx, b.Scope, b.Account, rid, !had)
	if err != nil {
		return nil, err
	}
	if !had {
		ws = append(ws, kv{nsAccount, acctKey(b.Scope, b.Account), acct})
	} else {
		win, err := s.winningRegistration(ctx, b.Scope, b.Account)
		if err != nil {
			return nil, err
		}
		if win == nil {
			// Stored by a build from before registrations were kept:
			// that one stays the account's.
			return nil, deny(api.CodeAuthConflict, "account %s already exists in scope %s", b.Account, b.Scope)
		}
		if bytes.Compare(rid[:], win) < 0 && len(v) >= 10 {
			ws = append(ws, kv{nsAccount, acctKey(b.Scope, b.Account), append(bytes.Clone(acct), v[10:]...)})
		}
	}
	ws = append(ws, qw...)
	if cred.ID != nil {
		cw, err := s.credentialWrites(ctx, cfg, b.Scope, b.Account, cred, originRoot, rid, nil)
		if err != nil {
			return nil, err
		}
		ws = append(ws, cw...)
	}
	return ws, nil
}

// winningRegistration returns the record id of the account's registration
// with the lowest id (nil if none is stored: an account of an older build).
func (s State) winningRegistration(ctx context.Context, scope, account string) ([]byte, error) {
	es, err := s.ops.List(ctx, nsRegistration, acctKey(scope, account)+"/", 1)
	if err != nil {
		return nil, fmt.Errorf("auth: store: %w", err)
	}
	if len(es) == 0 {
		return nil, nil
	}
	k := es[0].Key
	id, err := hex.DecodeString(k[strings.LastIndexByte(k, '/')+1:])
	if err != nil {
		return nil, fmt.Errorf("auth: store: corrupt registration key")
	}
	return id, nil
}

// everSelfRegistration reports whether a config the scope has or had (its
// base or a stored update) is in user or hybrid mode, the modes in which
// users register themselves with passkeys. It asks whether any config
// allowed it, not the current one, so that a self-registration and a
// scope.update that changes the mode apply in any order.
func (s State) everSelfRegistration(ctx context.Context, scope string, cur *record.ScopeConfig) (bool, error) {
	allows := func(c *record.ScopeConfig) bool { return c.Mode == record.ModeUser || c.Mode == record.ModeHybrid }
	if allows(cur) {
		return true, nil
	}
	if base, ok, err := get(ctx, s.ops, nsScopeBase, scope); err != nil {
		return false, err
	} else if ok && len(base) >= 8 {
		if c, err := record.DecodeScopeConfig(base[8:]); err == nil && allows(&c) {
			return true, nil
		}
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		if allows(c.cfg) {
			return true, nil
		}
	}
	return false, nil
}

// passkeyRegistration checks a passkey registration's attestation and
// returns the credential it registers, which is always the body's:
//
//   - AuthPasskeyCreateKeyed: the body names the passkey (Credential) and
//     the client's RegistrationKey; the attestation answers the challenge
//     over the body's Payload, registers exactly that passkey, and is
//     signed by the registration key. No one but the client that asked
//     for the challenge can register a passkey under it.
//   - AuthPasskeyCreate with a Credential: the same without a
//     registration key (a client that has none): the body, and so the
//     record's id, still fixes the passkey, so a second attestation (with
//     another passkey) is another record, which conflicts with the first
//     instead of being acknowledged as it.
//   - AuthPasskeyCreate without a Credential: the first encoding, whose
//     passkey comes from the attestation, kept so that records written
//     before remain valid. Its body must hold no registration key, so a
//     keyed registration's challenge cannot be answered this way.
func passkeyRegistration(cfg *record.ScopeConfig, r *record.Record, b *record.AccountRegisterBody) (record.Credential, error) {
	if b.Credential == nil {
		if r.Auth.Kind != record.AuthPasskeyCreate || b.RegistrationKey != nil {
			return record.Credential{}, deny(api.CodeAuthBadProof, "a keyed passkey registration must name its passkey in the body")
		}
		cred, err := verifyAttestation(cfg, r.Auth.WebAuthn, record.Challenge(r.Kind, r.Body))
		if err != nil {
			return record.Credential{}, deny(api.CodeAuthBadProof, "%v", err)
		}
		return cred, nil
	}
	if b.Credential.Kind != record.CredPasskey {
		return record.Credential{}, deny(api.CodeAuthBadProof, "a passkey registration registers a passkey")
	}
	if (r.Auth.Kind == record.AuthPasskeyCreateKeyed) != (b.RegistrationKey != nil) {
		return record.Credential{}, deny(api.CodeAuthBadProof, "a registration key needs its signature, and a signature its key")
	}
	ch := record.Challenge(r.Kind, b.Payload())
	cred, err := verifyAttestation(cfg, r.Auth.WebAuthn, ch)
	if err != nil {
		return record.Credential{}, deny(api.CodeAuthBadProof, "%v", err)
	}
	if !bytes.Equal(cred.ID, b.Credential.ID) || !bytes.Equal(cred.PublicKey, b.Credential.PublicKey) {
		return record.Credential{}, deny(api.CodeAuthBadProof, "the attestation is for another passkey than the registration names")
	}
	if b.RegistrationKey != nil {
		if err := b.RegistrationKey.Verify(record.RegistrationMessage(ch, r.Auth.WebAuthn), r.Auth.Sig); err != nil {
			return record.Credential{}, deny(api.CodeAuthBadProof, "the registration key did not sign this attestation")
		}
	}
	return *b.Credential, nil
}

// credentialWrites checks that cred may be a credential of the account
// (not a developer key of the scope: a developer's key never counts as the
// user's) and returns its writes: the credential and its origin (how it
// was added: originRoot, originDeveloper, or originCredential by the credential adder, in
// the record with id rid). A credential added more than once keeps one
// origin whatever their order: a root origin over one by a credential (so
// no add can hang a registered credential on another one, or on a cycle),
// then the lowest record id. A revoked credential is stored too (it is dead:
// Live), so that what it signed before its revocation still resolves on
// every node.
func (s State) credentialWrites(ctx context.Context, cfg *record.ScopeConfig, scope, account string, cred record.Credential, kind byte, rid [32]byte, adder []byte) ([]kv, error) {
	if cred.Kind == record.CredKey {
		if k, err := cred.Key(); err != nil {
			return nil, deny(api.CodeAuthBadProof, "credential key: %v", err)
		} else if base, err := s.baseConfig(ctx, scope, cfg); err != nil {
			return nil, err
		} else if base.HasDevKey(k) {
			// Checked against the scope's base config, which no record
			// changes, so that applying it does not depend on whether a
			// scope.update arrived first. Keys of later configs are
			// refused at submission (checkSubmission), and a current
			// developer key never proves as a user's (verifyProof).
			return nil, deny(api.CodeAuthBadProof, "a developer key of the scope cannot be a user's credential")
		}
	}
	k := subKey(scope, account, cred.ID)
	origin := append(append([]byte{kind}, rid[:]...), adder...)
	if v, ok, err := get(ctx, s.ops, nsCred, k); err != nil {
		return nil, err
	} else if ok {
		if !bytes.Equal(v, cred.Marshal()) {
			return nil, deny(api.CodeAuthConflict, "another credential with this id is registered to account %s", account)
		}
		o, ok, err := get(ctx, s.ops, nsCredOrigin, k)
		if err != nil {
			return nil, err
		}
		if !ok || len(o) < 33 || originLess(o, origin) || bytes.Equal(o, origin) {
			return nil, nil // the stored origin (or an older build's) stays
		}
	}
	return []kv{{nsCred, k, cred.Marshal()}, {nsCredOrigin, k, origin}}, nil
}

// baseConfig returns the config the scope's update chain starts from (its
// creation config), or cur for a scope an older build stored without one.
func (s State) baseConfig(ctx context.Context, scope string, cur *record.ScopeConfig) (*record.ScopeConfig, error) {
	base, ok, err := get(ctx, s.ops, nsScopeBase, scope)
	if err != nil || !ok || len(base) < 8 {
		return cur, err
	}
	c, err := record.DecodeScopeConfig(base[8:])
	if err != nil {
		return nil, fmt.Errorf("auth: store: corrupt scope base: %w", err)
	}
	return &c, nil
}

// originLess reports whether origin a ranks before b: by kind
// (originRank), then record id, then adder.
func originLess(a, b []byte) bool {
	if ra, rb := originRank(a[0]), originRank(b[0]); ra != rb {
		return ra < rb
	}
	return bytes.Compare(a[1:], b[1:]) < 0
}

// devAuthority checks that r is signed by developer keys of the scope:
// of its current config, or, if ever, of any config it ever had (a
// revocation's authority: revoking only removes power, so a key removed
// since still revokes, and applying it does not depend on whether the
// removal arrived first). A signer that is no developer key is a missing
// dependency when ever is set (the update adding it may not have arrived).
func (s State) devAuthority(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope string, ever bool) error {
	if !ever {
		return devSigned(r, cfg)
	}
	if r.Auth.Kind != record.AuthSignature && r.Auth.Kind != record.AuthSignatures {
		return deny(api.CodeAuthBadProof, "must be signed by a developer key")
	}
	for _, k := range r.Signers() {
		if ok, err := s.everDevKey(ctx, scope, k); err != nil {
			return err
		} else if !ok {
			return deny(api.CodeAuthUnknown, "signer is not a developer key of the scope")
		}
	}
	if err := r.VerifySignature(); err != nil {
		return deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
	}
	return nil
}

// isDevSigned reports whether r claims a developer's authority (several
// signatures, or one by a key the scope has or had as a developer key).
func (s State) isDevSigned(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope string, ever bool) (bool, error) {
	switch {
	case r.Auth.Kind == record.AuthSignatures:
		return true, nil
	case r.Auth.Kind != record.AuthSignature:
		return false, nil
	case cfg.HasDevKey(r.Auth.Signer):
		return true, nil
	case ever:
		return s.everDevKey(ctx, scope, r.Auth.Signer)
	}
	return false, nil
}

// accountAuthority checks that r is signed by a developer key (if
// devAllowed) or proven by one of the account's credentials: any
// credential ever registered to the account and any developer key the
// scope ever had if ever is set (revocations), a live credential and a
// current developer key otherwise.
func (s State) accountAuthority(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string, devAllowed, ever bool) error {
	if dev, err := s.isDevSigned(ctx, r, cfg, scope, ever); err != nil {
		return err
	} else if dev {
		if !devAllowed {
			return deny(api.CodeAuthBadProof, "must be proven by one of the account's credentials")
		}
		return s.devAuthority(ctx, r, cfg, scope, ever)
	}
	if ever {
		_, err := s.appliedProof(ctx, r, cfg, scope, account)
		return err
	}
	_, err := s.credentialProof(ctx, r, cfg, scope, account, s.credential)
	return err
}

// credentialAuthority checks that r is proven by one of the account's
// live credentials and returns it.
func (s State) credentialAuthority(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string) (*record.Credential, error) {
	return s.credentialProof(ctx, r, cfg, scope, account, s.credential)
}

// credentialProof checks that r is proven by the credential of the
// account that lookup returns, a passkey's for cfg's relying party and
// origins, and returns it.
func (s State) credentialProof(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string,
	lookup func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error)) (*record.Credential, error) {
	return s.recordProof(ctx, r, cfg, scope, account, lookup, false)
}

// appliedProof is what Apply checks a record proven by a credential of
// the account with: any credential ever registered to it (State.registered),
// a passkey's for the relying party and origins of any config the scope
// has or had (passkeyConfig), so that whether the record applies does not
// depend on the order revocations and scope.updates arrive in.
func (s State) appliedProof(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string) (*record.Credential, error) {
	return s.recordProof(ctx, r, cfg, scope, account, s.registered, true)
}

func (s State) recordProof(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string,
	lookup func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error), anyConfig bool) (*record.Credential, error) {
	var p CredentialProof
	switch r.Auth.Kind {
	case record.AuthSignature:
		// verifyProof refuses the base config's developer keys.
		p = CredentialProof{Signer: &r.Auth.Signer, Sig: r.Auth.Sig}
	case record.AuthPasskeyGet:
		p = CredentialProof{WebAuthn: r.Auth.WebAuthn}
	default:
		return nil, deny(api.CodeAuthBadProof, "must be proven by a credential of the account")
	}
	return s.checkProof(ctx, cfg, scope, account, p, record.SigningMessage(r.Kind, r.Body), lookup, anyConfig)
}

func (s State) credentialAdd(ctx context.Context, r *record.Record, b *record.CredentialAddBody) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	if b.Credential.Kind != record.CredKey {
		return nil, deny(api.CodeAuthBadProof, "credential.add takes plain-key credentials; passkeys are added by registration")
	}
	// Only in developer mode does the developer add credentials: in user
	// and hybrid mode a credential that approves as the user is added by
	// the user's own credentials, so the developer cannot give itself the
	// user's half. The account's mode is the one it was registered under,
	// so a scope.update to developer mode does not open this either.
	//
	// A credential adding one need only be registered to the account, not
	// live: what it adds is live only while it is (Live), so applying the
	// add does not depend on whether its revocation arrived first.
	if k, err := s.ambiguousSigner(ctx, r, cfg, b.Scope); err != nil {
		return nil, err
	} else if k != nil {
		// One plain key, not a base developer key: stored as an add by
		// that key whatever its role, which Live reads (devrole.go).
		id, err := s.keySignerProof(ctx, r, cfg, b.Scope, b.Account)
		if err != nil {
			return nil, err
		}
		return s.credentialWrites(ctx, cfg, b.Scope, b.Account, b.Credential, originCredential, r.ID(), id)
	}
	if dev, err := s.isDevSigned(ctx, r, cfg, b.Scope, true); err != nil {
		return nil, err
	} else if dev {
		// Stored in any mode and by any key that is or was a developer
		// key, approving only while the account is in developer mode
		// and every signer is a developer key of the scope's current
		// config (Live): the account's mode and the scope's keys can
		// depend on scope.updates that arrive later, so whether the add
		// applies must not. SubmitRecord refuses it outside developer
		// mode or signed by a key that is not a current developer key.
		if err := s.devAuthority(ctx, r, cfg, b.Scope, true); err != nil {
			return nil, err
		}
		return s.credentialWrites(ctx, cfg, b.Scope, b.Account, b.Credential, originDeveloper, r.ID(), signerIDs(r))
	}
	adder, err := s.appliedProof(ctx, r, cfg, b.Scope, b.Account)
	if err != nil {
		return nil, err
	}
	return s.credentialWrites(ctx, cfg, b.Scope, b.Account, b.Credential, originCredential, r.ID(), adder.ID)
}

// signerIDs is the ids of r's signers, concatenated (canonical order).
func signerIDs(r *record.Record) []byte {
	var out []byte
	for _, k := range r.Signers() {
		id := k.ID()
		out = append(out, id[:]...)
	}
	return out
}

// accountMode stores an account.mode record: a move of the account to a
// mode the scope has or had (the developer asked for it by setting it on
// the scope), signed by keys that are or were developer keys of the
// scope or proven by a credential ever registered to the account. Every
// such record is stored, whatever order they arrive in, and the account's
// mode is resolved from them (accountModeChain): a developer's signature
// counts only while the account is in developer mode, a credential's
// only while it has a user's half and the credential is live. Without a
// valid record an account keeps the mode it was registered under.
// SubmitRecord also checks the record against this node's current state
// (checkSubmission).
func (s State) accountMode(ctx context.Context, r *record.Record, b *record.AccountModeBody) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	if b.Seq == 0 {
		return nil, deny(api.CodeAuthBadProof, "account mode sequence numbers start at 1")
	}
	if ok, err := s.everMode(ctx, b.Scope, cfg, b.Mode); err != nil {
		return nil, err
	} else if !ok {
		// Missing: the update to that mode may arrive.
		return nil, &Denial{Code: api.CodeAuthBadProof, Missing: true, Msg: fmt.Sprintf("scope %s is in %s mode: an account moves only to its scope's mode", b.Scope, cfg.Mode)}
	}
	val := []byte{byte(b.Mode), modeByDeveloper}
	if k, err := s.ambiguousSigner(ctx, r, cfg, b.Scope); err != nil {
		return nil, err
	} else if k != nil {
		// One plain key, not a base developer key: stored as proven by
		// that key whatever its role, which accountModeChain reads
		// (devrole.go).
		id, err := s.keySignerProof(ctx, r, cfg, b.Scope, b.Account)
		if err != nil {
			return nil, err
		}
		val = append([]byte{byte(b.Mode), modeByCredential}, id...)
	} else if dev, err := s.isDevSigned(ctx, r, cfg, b.Scope, true); err != nil {
		return nil, err
	} else if dev {
		if err := s.devAuthority(ctx, r, cfg, b.Scope, true); err != nil {
			return nil, err
		}
	} else {
		c, err := s.appliedProof(ctx, r, cfg, b.Scope, b.Account)
		if err != nil {
			return nil, err
		}
		val = append([]byte{byte(b.Mode), modeByCredential}, c.ID...)
	}
	id := applyID(r)
	return []kv{{nsAccountModeRec, fmt.Sprintf("%s/%016x/%x", acctKey(b.Scope, b.Account), b.Seq, id[:]), val}}, nil
}

// everMode reports whether the scope has or had a config in mode m (its
// current one, its base or any stored update).
func (s State) everMode(ctx context.Context, scope string, cur *record.ScopeConfig, m record.Mode) (bool, error) {
	if cur.Mode == m {
		return true, nil
	}
	if base, ok, err := get(ctx, s.ops, nsScopeBase, scope); err != nil {
		return false, err
	} else if ok && len(base) >= 8 {
		if c, err := record.DecodeScopeConfig(base[8:]); err == nil && c.Mode == m {
			return true, nil
		}
	}
	cands, err := s.scopeCandidates(ctx, scope)
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		if c.cfg.Mode == m {
			return true, nil
		}
	}
	return false, nil
}

func (s State) credentialRevoke(ctx context.Context, r *record.Record, b *record.CredentialRevokeBody, id [32]byte) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	// Any credential ever registered to the account, or any key that was
	// ever a developer key of the scope, revokes: revoking only removes
	// power, so it applies whatever happened to its signer since, and
	// mutual revocations revoke both.
	if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, true, true); err != nil {
		return nil, err
	}
	// A tombstone even for a credential this node has not seen yet: the
	// revocation wins whatever order records arrive in.
	return []kv{{nsCredRevoked, subKey(b.Scope, b.Account, b.CredentialID), id[:]}}, nil
}

func (s State) sessionCreate(ctx context.Context, r *record.Record, b *record.SessionCreateBody) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	// Made by a credential registered to the account, live or not: a
	// session approves only while the credential that made it is live
	// and the session is not revoked (Authorize checks both), so
	// applying it does not depend on the order revocations arrive in. A
	// revoked session's record is stored too, and stays revoked.
	if _, err := s.appliedProof(ctx, r, cfg, b.Scope, b.Account); err != nil {
		return nil, err
	}
	sid := b.Key.ID()
	return []kv{{nsSession, subKey(b.Scope, b.Account, sid[:]), binary.BigEndian.AppendUint64(nil, uint64(b.Expiry))}}, nil
}

func (s State) sessionRevoke(ctx context.Context, r *record.Record, b *record.SessionRevokeBody, id [32]byte) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	if r.Auth.Kind == record.AuthSignature && r.Auth.Signer.ID() == b.Session {
		// The session key revokes itself (log out).
		if err := r.VerifySignature(); err != nil {
			return nil, deny(api.CodeAuthBadProof, "session key signature does not verify")
		}
	} else if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, true, true); err != nil {
		return nil, err
	}
	return []kv{{nsSessionRevoked, subKey(b.Scope, b.Account, b.Session[:]), id[:]}}, nil
}

// checkSessionLifetime refuses a session longer than the scope allows.
func checkSessionLifetime(b *record.SessionCreateBody, cfg *record.ScopeConfig) error {
	if b.Expiry-b.Issued > int64(cfg.SessionTTL) {
		return deny(api.CodeAuthBadProof, "session lifetime %d s exceeds the scope's %d s", b.Expiry-b.Issued, cfg.SessionTTL)
	}
	return nil
}

// challengeOf is the WebAuthn challenge that commits to msg.
func challengeOf(msg []byte) []byte {
	h := sha256.Sum256(msg)
	return h[:]
}
