package auth

import (
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
	nsAccount        = "auth.account"         // scope/account → how ‖ time
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
// Applying a record already applied returns nil and writes nothing. A
// record that fails validation returns an error wrapping ErrInvalid (a
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
		return nil
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

// devSigned checks that r is signed by one of cfg's developer keys.
func devSigned(r *record.Record, cfg *record.ScopeConfig) error {
	if r.Auth.Kind != record.AuthSignature {
		return deny(api.CodeAuthBadProof, "must be signed by a developer key")
	}
	if !cfg.HasDevKey(r.Auth.Signer) {
		return deny(api.CodeAuthBadProof, "signer is not a developer key of the scope")
	}
	if err := r.VerifySignature(); err != nil {
		return deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
	}
	return nil
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
	if err := devSigned(r, cfg); err != nil {
		return nil, err
	}
	if b.Seq <= seq {
		return nil, deny(api.CodeAuthConflict, "scope %s is at sequence %d; update %d is stale", b.Scope, seq, b.Seq)
	}
	return []kv{{nsScope, b.Scope, scopeValue(b.Seq, &b.Config)}}, nil
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
	case record.AuthSignature:
		if err := devSigned(r, cfg); err != nil {
			return nil, err
		}
		how = regDelegated
		if b.Credential != nil {
			if b.Credential.Kind != record.CredKey {
				return nil, deny(api.CodeAuthBadProof, "a delegated registration can only carry a plain-key credential")
			}
			cred = *b.Credential
		}
	case record.AuthPasskeyCreate:
		if b.Credential != nil {
			return nil, deny(api.CodeAuthBadProof, "a passkey registration takes its credential from the attestation")
		}
		if cred, err = verifyAttestation(cfg, r.Auth.WebAuthn, record.Challenge(r.Kind, r.Body)); err != nil {
			return nil, deny(api.CodeAuthBadProof, "%v", err)
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
	ws := []kv{{nsAccount, acctKey(b.Scope, b.Account), acct}, {nsRegNonce, nonceKey, []byte(b.Account)}}
	if cred.ID != nil {
		cw, err := s.credentialWrites(ctx, b.Scope, b.Account, cred)
		if err != nil {
			return nil, err
		}
		ws = append(ws, cw...)
	}
	return ws, nil
}

// credentialWrites checks that cred may be added to the account (not
// revoked, its id not used in the scope) and returns its writes.
func (s State) credentialWrites(ctx context.Context, scope, account string, cred record.Credential) ([]kv, error) {
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
	if r.Auth.Kind == record.AuthSignature && cfg.HasDevKey(r.Auth.Signer) {
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
	if err := s.accountAuthority(ctx, r, cfg, b.Scope, b.Account, true); err != nil {
		return nil, err
	}
	return s.credentialWrites(ctx, b.Scope, b.Account, b.Credential)
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
