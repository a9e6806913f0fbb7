package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

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

// Denial is an authorization or validation failure with the API code the
// client sees (api.CodeAuth…). Its Msg never holds secrets. It wraps
// ErrInvalid.
type Denial struct {
	Code int
	Msg  string
}

func (d *Denial) Error() string { return "auth: " + d.Msg }

// Unwrap makes a Denial match ErrInvalid.
func (d *Denial) Unwrap() error { return ErrInvalid }

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
	nsCredIndex      = "auth.credidx"         // scope/credid → account
	nsCredRevoked    = "auth.cred.revoked"    // scope/account/credid → record id
	nsSession        = "auth.session"         // scope/account/sessionid → expiry
	nsSessionRevoked = "auth.session.revoked" // scope/account/sessionid → record id
	nsRegNonce       = "auth.regnonce"        // scope/nonce → account
	nsNonce          = "auth.nonce"           // scope/nonce → op hash ‖ request ‖ expiry
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

// AccountMode returns the mode an account was registered under: the
// scope's mode when its registration was applied. It is the account's
// mode for good: a later scope.update changes the mode of the accounts
// registered after it, never of this one. cfg is the scope's current
// config; an account stored by a build that did not record modes has its
// scope's current mode.
func (s State) AccountMode(ctx context.Context, scope, account string, cfg *record.ScopeConfig) (record.Mode, error) {
	v, ok, err := get(ctx, s.ops, nsAccount, acctKey(scope, account))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, deny(api.CodeAuthUnknown, "unknown account %s in scope %s", account, scope)
	}
	if len(v) >= 10 {
		m := record.Mode(v[9])
		if m < record.ModeUser || m > record.ModeHybrid {
			return 0, fmt.Errorf("auth: store: corrupt account %s", account)
		}
		return m, nil
	}
	return cfg.Mode, nil
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

// Credentials returns the account's credentials that are not revoked.
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
		if _, revoked, err := get(ctx, s.ops, nsCredRevoked, subKey(scope, account, c.ID)); err != nil {
			return nil, err
		} else if !revoked {
			out = append(out, c)
		}
	}
	return out, nil
}

// credential returns one of the account's credentials, with a Denial if
// it is unknown or revoked.
func (s State) credential(ctx context.Context, scope, account string, id []byte) (*record.Credential, error) {
	k := subKey(scope, account, id)
	if _, revoked, err := get(ctx, s.ops, nsCredRevoked, k); err != nil {
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

// verifyCredential checks p over msg against the account's (unrevoked)
// credentials and returns the credential used.
func (s State) verifyCredential(ctx context.Context, cfg *record.ScopeConfig, scope, account string, p CredentialProof, msg []byte) (*record.Credential, error) {
	switch {
	case p.Signer != nil:
		if cfg.HasDevKey(*p.Signer) {
			// Never the user's, even if an older build stored it as a
			// credential (credentialWrites refuses it now).
			return nil, deny(api.CodeAuthBadProof, "a developer key of the scope is not a user's credential")
		}
		id := p.Signer.ID()
		c, err := s.credential(ctx, scope, account, id[:])
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
		c, err := s.credential(ctx, scope, account, id)
		if err != nil {
			return nil, err
		}
		if c.Kind != record.CredPasskey {
			return nil, deny(api.CodeAuthBadProof, "credential is not a passkey")
		}
		if err := verifyAssertion(cfg, par, c.PublicKey, challengeOf(msg)); err != nil {
			return nil, deny(api.CodeAuthBadProof, "%v", err)
		}
		return c, nil
	}
	return nil, deny(api.CodeAuthBadProof, "empty credential proof")
}

// Applier is the auth state machine: it implements replica.Applier.
type Applier struct{}

// Apply validates rec (a record.Record encoding) against the state read
// through tx and writes its effect through tx. It checks the record's
// signature or passkey proof and its chain of authority: a scope is
// created by one of its own developer keys and updated by a current one;
// an account is registered by a passkey attestation whose challenge
// commits to the registration, or by a developer key (delegated); a
// credential or session is added or revoked by the account's credentials
// (or a developer key where the record kind allows it). Revocations are
// final: a revoked credential or session is never re-added.
//
// Applying a record whose id (kind and body) is already applied writes
// nothing and returns an error wrapping replica.ErrDuplicate, whatever its
// proof: a second proof of an applied body is dropped, not stored or
// replicated. A record that fails validation returns an error wrapping ErrInvalid (a
// *Denial) and writes nothing: every check runs before the first write.
// Apply does not look at the clock, so that a node catching up accepts
// the same records as the others did; freshness is checked where records
// are submitted.
func (Applier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	r, err := record.Unmarshal(rec)
	if err != nil {
		return deny(api.CodeAuthBadProof, "%v", err)
	}
	id := r.ID()
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
		writes, err = st.scopeCreate(ctx, r, b)
	case *record.ScopeUpdateBody:
		writes, err = st.scopeUpdate(ctx, r, b)
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
			return &Denial{Code: d.Code, Msg: r.Kind.String() + ": " + d.Msg}
		}
		return err
	}
	writes = append(writes, kv{nsApplied, idKey, []byte{byte(r.Kind)}})
	for _, w := range writes {
		if err := tx.Put(ctx, w.ns, w.key, w.val); err != nil {
			return fmt.Errorf("auth: store: %w", err)
		}
	}
	return nil
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
	return []kv{{nsScope, id, scopeValue(0, &b.Config)}}, nil
}

func (s State) scopeUpdate(ctx context.Context, r *record.Record, b *record.ScopeUpdateBody) ([]kv, error) {
	seq, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	// Any one developer key changes what the config holds but the keys:
	// origins, session lifetime, raw digests, and the mode, which applies
	// to accounts registered from then on (AccountMode). Changing the
	// developer keys or their quorum takes a quorum of the current keys,
	// so that one stolen key cannot remove the others.
	n, err := devSigners(r, cfg)
	if err != nil {
		return nil, err
	}
	if devKeysChange(cfg, &b.Config) && n < cfg.Quorum() {
		return nil, deny(api.CodeAuthBadProof, "changing the developer keys of scope %s takes %d of its %d developer keys; signed by %d", b.Scope, cfg.Quorum(), len(cfg.DevKeys), n)
	}
	if b.Seq <= seq {
		return nil, deny(api.CodeAuthConflict, "scope %s is at sequence %d; update %d is stale", b.Scope, seq, b.Seq)
	}
	ws := []kv{{nsScope, b.Scope, scopeValue(b.Seq, &b.Config)}}
	if b.Config.Mode != cfg.Mode {
		// Accounts stored before accounts recorded their mode have the
		// scope's current mode (AccountMode): pin it before it changes.
		es, err := s.ops.List(ctx, nsAccount, b.Scope+"/", 0)
		if err != nil {
			return nil, fmt.Errorf("auth: store: %w", err)
		}
		for _, e := range es {
			if len(e.Value) == 9 {
				ws = append(ws, kv{nsAccount, e.Key, append(bytes.Clone(e.Value), byte(cfg.Mode))})
			}
		}
	}
	return ws, nil
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
		if err := devSigned(r, cfg); err != nil {
			return nil, err
		}
		how = regDelegated
		if b.RegistrationKey != nil {
			return nil, deny(api.CodeAuthBadProof, "a delegated registration has no registration key")
		}
		if b.Credential != nil {
			if b.Credential.Kind != record.CredKey {
				return nil, deny(api.CodeAuthBadProof, "a delegated registration can only carry a plain-key credential")
			}
			cred = *b.Credential
		}
	case record.AuthPasskeyCreate, record.AuthPasskeyCreateKeyed:
		if cred, err = passkeyRegistration(cfg, r, b); err != nil {
			return nil, err
		}
		how = regPasskey
	default:
		return nil, deny(api.CodeAuthBadProof, "must be a passkey attestation or a developer signature")
	}
	if ok, err := s.HasAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	} else if ok {
		return nil, deny(api.CodeAuthConflict, "account %s already exists in scope %s", b.Account, b.Scope)
	}
	nonceKey := b.Scope + "/" + hex.EncodeToString(b.Nonce[:])
	if _, used, err := get(ctx, s.ops, nsRegNonce, nonceKey); err != nil {
		return nil, err
	} else if used {
		return nil, deny(api.CodeAuthReplay, "registration nonce already used in scope %s", b.Scope)
	}
	acct := append([]byte{how}, binary.BigEndian.AppendUint64(nil, uint64(b.Time))...)
	acct = append(acct, byte(cfg.Mode)) // the account's mode for good (AccountMode)
	ws := []kv{{nsAccount, acctKey(b.Scope, b.Account), acct}, {nsRegNonce, nonceKey, []byte(b.Account)}}
	if cred.ID != nil {
		cw, err := s.credentialWrites(ctx, cfg, b.Scope, b.Account, cred)
		if err != nil {
			return nil, err
		}
		ws = append(ws, cw...)
	}
	return ws, nil
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

// credentialWrites checks that cred may be added to the account (not
// revoked, its id not used in the scope, not a developer key of the scope:
// a developer's key never counts as the user's) and returns its writes.
func (s State) credentialWrites(ctx context.Context, cfg *record.ScopeConfig, scope, account string, cred record.Credential) ([]kv, error) {
	if cred.Kind == record.CredKey {
		if k, err := cred.Key(); err != nil {
			return nil, deny(api.CodeAuthBadProof, "credential key: %v", err)
		} else if cfg.HasDevKey(k) {
			return nil, deny(api.CodeAuthBadProof, "a developer key of the scope cannot be a user's credential")
		}
	}
	k := subKey(scope, account, cred.ID)
	if _, revoked, err := get(ctx, s.ops, nsCredRevoked, k); err != nil {
		return nil, err
	} else if revoked {
		return nil, deny(api.CodeAuthRevoked, "credential was revoked; it cannot be added again")
	}
	ik := scope + "/" + hex.EncodeToString(cred.ID)
	if _, used, err := get(ctx, s.ops, nsCredIndex, ik); err != nil {
		return nil, err
	} else if used {
		return nil, deny(api.CodeAuthConflict, "credential already registered in scope %s", scope)
	}
	return []kv{{nsCred, k, cred.Marshal()}, {nsCredIndex, ik, []byte(account)}}, nil
}

// accountAuthority checks that r is signed by a developer key (if
// devAllowed) or proven by one of the account's unrevoked credentials.
func (s State) accountAuthority(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string, devAllowed bool) error {
	if r.Auth.Kind == record.AuthSignatures || r.Auth.Kind == record.AuthSignature && cfg.HasDevKey(r.Auth.Signer) {
		if !devAllowed {
			return deny(api.CodeAuthBadProof, "must be proven by one of the account's credentials")
		}
		return devSigned(r, cfg)
	}
	_, err := s.credentialAuthority(ctx, r, cfg, scope, account)
	return err
}

// credentialAuthority checks that r is proven by one of the account's
// unrevoked credentials and returns it.
func (s State) credentialAuthority(ctx context.Context, r *record.Record, cfg *record.ScopeConfig, scope, account string) (*record.Credential, error) {
	var p CredentialProof
	switch r.Auth.Kind {
	case record.AuthSignature:
		if cfg.HasDevKey(r.Auth.Signer) {
			return nil, deny(api.CodeAuthBadProof, "must be proven by one of the account's credentials")
		}
		p = CredentialProof{Signer: &r.Auth.Signer, Sig: r.Auth.Sig}
	case record.AuthPasskeyGet:
		p = CredentialProof{WebAuthn: r.Auth.WebAuthn}
	default:
		return nil, deny(api.CodeAuthBadProof, "must be proven by a credential of the account")
	}
	return s.verifyCredential(ctx, cfg, scope, account, p, record.SigningMessage(r.Kind, r.Body))
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
	mode, err := s.AccountMode(ctx, b.Scope, b.Account, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, mode == record.ModeDeveloper); err != nil {
		return nil, err
	}
	return s.credentialWrites(ctx, cfg, b.Scope, b.Account, b.Credential)
}

// accountMode moves an account to its scope's current mode: the
// developer asked for that mode by setting it on the scope, and the
// account's holder consents by signing the record: one of the account's
// credentials while the account has a user's half (user or hybrid mode),
// a developer key while it is in developer mode. Without that record an
// account keeps the mode it was registered under.
func (s State) accountMode(ctx context.Context, r *record.Record, b *record.AccountModeBody) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	v, ok, err := get(ctx, s.ops, nsAccount, acctKey(b.Scope, b.Account))
	if err != nil {
		return nil, err
	}
	if !ok || len(v) < 9 {
		return nil, deny(api.CodeAuthUnknown, "unknown account %s in scope %s", b.Account, b.Scope)
	}
	cur, err := s.AccountMode(ctx, b.Scope, b.Account, cfg)
	if err != nil {
		return nil, err
	}
	var seq uint64
	if len(v) >= 18 {
		seq = binary.BigEndian.Uint64(v[10:18])
	}
	if b.Seq <= seq {
		return nil, deny(api.CodeAuthConflict, "account %s is at mode sequence %d; change %d is stale", b.Account, seq, b.Seq)
	}
	if b.Mode != cfg.Mode {
		return nil, deny(api.CodeAuthBadProof, "scope %s is in %s mode: an account moves only to its scope's current mode", b.Scope, cfg.Mode)
	}
	if b.Mode == cur {
		return nil, deny(api.CodeAuthConflict, "account %s is already in %s mode", b.Account, cur)
	}
	if cur == record.ModeDeveloper {
		err = devSigned(r, cfg)
	} else {
		_, err = s.credentialAuthority(ctx, r, cfg, b.Scope, b.Account)
	}
	if err != nil {
		return nil, err
	}
	nv := append(bytes.Clone(v[:9]), byte(b.Mode))
	nv = binary.BigEndian.AppendUint64(nv, b.Seq)
	return []kv{{nsAccount, acctKey(b.Scope, b.Account), nv}}, nil
}

func (s State) credentialRevoke(ctx context.Context, r *record.Record, b *record.CredentialRevokeBody, id [32]byte) ([]kv, error) {
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.needAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	}
	if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, true); err != nil {
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
	if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, false); err != nil {
		return nil, err
	}
	if err := checkSessionLifetime(b, cfg); err != nil {
		return nil, err
	}
	sid := b.Key.ID()
	if revoked, err := s.SessionRevoked(ctx, b.Scope, b.Account, sid); err != nil {
		return nil, err
	} else if revoked {
		return nil, deny(api.CodeAuthRevoked, "session key was revoked")
	}
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
	} else if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, true); err != nil {
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
