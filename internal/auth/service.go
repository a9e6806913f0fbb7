package auth

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// Timing rules.
const (
	// ChallengeTTL is how long a registration or authentication challenge
	// can be completed.
	ChallengeTTL = 5 * time.Minute
	// MaxApprovalTTL is the longest an approval may be valid for
	// (api.MaxApprovalTTL).
	MaxApprovalTTL = api.MaxApprovalTTL
	// MaxClockSkew is how far a delegated registration's timestamp may be
	// from the node's clock.
	MaxClockSkew = 5 * time.Minute
)

// Options configure New.
type Options struct {
	// Store is the node's store (required).
	Store store.Store
	// Submit stores a record on a write quorum (replica.Replica.Submit);
	// its *replica.QuorumError becomes api.CodeUnavailable.
	// Nil applies records to Store only, with Applier, for a node without
	// replication.
	Submit func(ctx context.Context, rec []byte) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Origins is the cluster's rule on scope origins (development when
	// zero). The replica's auth Applier must have the same; SubmitRecord
	// checks it first so that a client gets a clear error.
	Origins OriginPolicy
	// Admission is the cluster's rule on who may create scopes (open when
	// zero); like Origins, the replica's auth Applier must have the same.
	Admission AdmissionPolicy
}

// Service is a node's auth service: it accepts signed records through the
// JSON-RPC methods (scopes, registration, authentication) and answers
// Authorize. It is safe for concurrent use.
type Service struct {
	st        store.Store
	submit    func(ctx context.Context, rec []byte) error
	now       func() time.Time
	origins   OriginPolicy
	admission AdmissionPolicy

	challenges challengeTable // open ceremonies (challenge.go)
	decoy      decoyKey       // answers for accounts without a passkey (decoy.go)

	verified verifiedSessions // session records whose proof verified (authorize.go)
	accounts accountCache     // accounts' derived state per scope epoch (cache.go)
	quota    quotaMemo        // accounts' quota answers per scope epoch (accountquota.go)
}

// challenge is an open registration or authentication: single-use,
// expiring.
type challenge struct {
	kind    record.Kind
	scope   string
	account string
	body    []byte
	expires time.Time

	id     string        // set by challengeTable.put
	source string        // the client address that opened it (httpapi.ClientSource)
	elem   *list.Element // in its scope's list
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("auth: Options.Store is required")
	}
	s := &Service{st: opts.Store, submit: opts.Submit, now: opts.Now, origins: opts.Origins, admission: opts.Admission}
	if s.now == nil {
		s.now = time.Now
	}
	if s.submit == nil {
		s.submit = func(ctx context.Context, rec []byte) error {
			err := s.st.Update(ctx, func(tx store.Ops) error {
				return Applier{Origins: s.origins, Admission: s.admission}.Apply(ctx, tx, rec)
			})
			if errors.Is(err, replica.ErrDuplicate) {
				return nil // already applied: the replica also acknowledges it
			}
			return err
		}
	}
	return s, nil
}

// SubmitRecord stores a signed record through Options.Submit. Validation
// failures are *Denial errors (errors.As).
func (s *Service) SubmitRecord(ctx context.Context, rec *record.Record) error {
	if rec.Kind == record.SessionCreate {
		// The scope's session lifetime is checked here and by Authorize,
		// against the config of the moment, not by Apply: a session.create
		// must apply the same way before and after a scope.update that
		// changes the lifetime.
		if b, err := record.DecodeSessionCreate(rec.Body); err == nil {
			if _, cfg, err := s.State().Scope(ctx, b.Scope); err == nil {
				if err := checkSessionLifetime(b, cfg); err != nil {
					return err
				}
			}
		}
	}
	// What Apply must accept for convergence but a client should not
	// submit now (a removed developer key, a stale mode change).
	if err := s.State().checkSubmission(ctx, rec); err != nil {
		return err
	}
	if err := s.admission.checkCreate(rec); err != nil {
		return prefixed(rec.Kind, err)
	}
	if err := s.State().checkAccountQuota(ctx, rec); err != nil {
		return prefixed(rec.Kind, err)
	}
	switch rec.Kind {
	case record.ScopeCreate, record.ScopeUpdate:
		var cfg *record.ScopeConfig
		switch b, _ := record.DecodeBody(rec.Kind, rec.Body); b := b.(type) {
		case *record.ScopeCreateBody:
			cfg = &b.Config
		case *record.ScopeUpdateBody:
			cfg = &b.Config
		}
		if cfg != nil {
			if err := s.origins.check(cfg); err != nil {
				return prefixed(rec.Kind, err)
			}
		}
	}
	return s.submit(ctx, rec.Marshal())
}

// State returns the auth state as stored on this node.
func (s *Service) State() State { return State{s.st} }

// apiError turns a submit or state error into what a client sees: a
// Denial's code and message, or the error itself for the handler to
// report (an *api.Error passes through; anything else is internal).
func apiError(err error) error {
	var d *Denial
	if errors.As(err, &d) {
		return d.API()
	}
	var q *replica.QuorumError
	if errors.As(err, &q) {
		// The peers' refusal texts are theirs (untrusted): name them only.
		return api.Errorf(api.CodeUnavailable, "record stored on %d of %d nodes, %d needed (refused by %v, down: %v); retry later", q.Stored, q.N, q.Need, q.Refused(), q.Down())
	}
	return err
}

func randID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func decodeRecordParam(s string) (*record.Record, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "record must be base64url")
	}
	r, err := record.Unmarshal(b)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "record: %v", err)
	}
	return r, nil
}

func scopeInfo(id string, seq uint64, c *record.ScopeConfig) *api.Scope {
	out := &api.Scope{ID: id, Seq: seq, RPID: c.RPID, Origins: c.Origins, Mode: c.Mode.String(), SessionTTL: c.SessionTTL, AllowRawDigest: c.AllowRawDigest, DevQuorum: c.Quorum(),
		Quota: api.ScopeQuota{KeygensInFlight: c.Quota.KeygensInFlight, SignaturesPerSecond: c.Quota.SignsPerSecond, MaxAccounts: c.Quota.MaxAccounts, MaxKeys: c.Quota.MaxKeys}}
	for _, k := range c.DevKeys {
		out.DevKeys = append(out.DevKeys, k.String())
	}
	return out
}

// CreateScope stores a scope.create record (keymesh_createScope).
func (s *Service) CreateScope(ctx context.Context, p api.SignedRecord) (*api.Scope, error) {
	r, err := decodeRecordParam(p.Record)
	if err != nil {
		return nil, err
	}
	if r.Kind != record.ScopeCreate {
		return nil, api.Errorf(api.CodeInvalidParams, "record is a %s, want scope.create", r.Kind)
	}
	b, err := record.DecodeScopeCreate(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "scope.create: %v", err)
	}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	return scopeInfo(b.ScopeID(), 0, &b.Config), nil
}

// UpdateScope stores a scope.update record (keymesh_updateScope).
func (s *Service) UpdateScope(ctx context.Context, p api.SignedRecord) (*api.Scope, error) {
	r, err := decodeRecordParam(p.Record)
	if err != nil {
		return nil, err
	}
	if r.Kind != record.ScopeUpdate {
		return nil, api.Errorf(api.CodeInvalidParams, "record is a %s, want scope.update", r.Kind)
	}
	b, err := record.DecodeScopeUpdate(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "scope.update: %v", err)
	}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	// The scope as this node now resolves it: an update that is stored
	// but not on the scope's chain (signed by a key removed at a lower
	// seq, or tied and outranked) leaves another config in effect, and
	// the caller sees which.
	seq, cfg, err := s.State().Scope(ctx, b.Scope)
	if err != nil {
		return nil, apiError(err)
	}
	return scopeInfo(b.Scope, seq, cfg), nil
}

// GetScope returns a scope's config as this node has it (keymesh_getScope).
func (s *Service) GetScope(ctx context.Context, id string) (*api.Scope, error) {
	if err := record.CheckScopeID(id); err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	seq, cfg, err := s.State().Scope(ctx, id)
	if err != nil {
		return nil, apiError(err)
	}
	return scopeInfo(id, seq, cfg), nil
}

// AllowsRawDigest reports whether scope's current config allows its
// accounts to sign raw digests (keymesh_signDigest): wallet.Options.RawDigest.
// It fails closed: an unknown scope, or a store error, allows nothing.
func (s *Service) AllowsRawDigest(ctx context.Context, scope string) bool {
	_, cfg, err := s.State().Scope(ctx, scope)
	return err == nil && cfg.AllowRawDigest
}

// DelegatedRegistration stores an account.register record signed by a
// developer key (keymesh_delegatedRegistration). The payload's timestamp
// must be within MaxClockSkew of the node's clock, and a registration
// already stored is refused as a replay (Apply also refuses a reused
// nonce), so a captured request cannot be replayed.
func (s *Service) DelegatedRegistration(ctx context.Context, p api.SignedRecord) (*api.Account, error) {
	r, err := decodeRecordParam(p.Record)
	if err != nil {
		return nil, err
	}
	if r.Kind != record.AccountRegister || r.Auth.Kind != record.AuthSignature {
		return nil, api.Errorf(api.CodeInvalidParams, "want an account.register record signed by a developer key")
	}
	b, err := record.DecodeAccountRegister(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "account.register: %v", err)
	}
	now := s.now()
	if d := now.Sub(time.Unix(b.Time, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return nil, api.Errorf(api.CodeAuthExpired, "registration timestamp is %s from the node's clock (at most %s allowed)", d.Round(time.Second), MaxClockSkew)
	}
	id := r.ID()
	if _, done, err := get(ctx, s.st, nsApplied, hex.EncodeToString(id[:])); err != nil {
		return nil, err
	} else if done {
		return nil, api.Errorf(api.CodeAuthReplay, "this registration was already submitted")
	}
	// Apply takes a second registration of an id (the lowest record id
	// is the account's, on every node); a developer asking for one here
	// most likely did not mean to replace the account.
	if ok, err := s.State().HasAccount(ctx, b.Scope, b.Account); err != nil {
		return nil, err
	} else if ok {
		return nil, api.Errorf(api.CodeAuthConflict, "account %s already exists in scope %s", b.Account, b.Scope)
	}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	return &api.Account{Scope: b.Scope, Account: b.Account}, nil
}

// putChallenge opens c for the client of ctx, within the limits of
// challenge.go (per scope, per client address, node-wide).
func (s *Service) putChallenge(ctx context.Context, c *challenge) (string, error) {
	c.source = httpapi.ClientSource(ctx)
	return s.challenges.put(s.now(), c)
}

// takeChallenge removes and returns a challenge: each is used once,
// whether or not its completion succeeds.
func (s *Service) takeChallenge(id string, kind record.Kind) (*challenge, error) {
	c := s.challenges.take(id)
	if c == nil || c.kind != kind {
		return nil, api.Errorf(api.CodeAuthUnknown, "unknown or already used challenge")
	}
	if s.now().After(c.expires) {
		return nil, api.Errorf(api.CodeAuthExpired, "challenge expired")
	}
	return c, nil
}

func (s *Service) checkIDs(scope, account string) error {
	if err := record.CheckScopeID(scope); err != nil {
		return api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	if err := record.CheckAccountID(account); err != nil {
		return api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	return nil
}

// InitiateRegistration opens a passkey registration for a new account
// (keymesh_initiateRegistration): the challenge commits to the
// account.register payload (scope, account, nonce, time), so every node
// can check the attestation against the record alone.
//
// A passkey self-registration's account id is its registration key's
// (record.DerivedAccountID): registrationKey is required, and account,
// if given, must be that id. Scopes in developer mode take no
// self-registration (their developer registers accounts).
func (s *Service) InitiateRegistration(ctx context.Context, p api.InitiateRegistrationParams) (*api.InitiateResult, error) {
	if p.RegistrationKey == "" {
		return nil, api.Errorf(api.CodeInvalidParams, "registrationKey is required: a passkey registration's account id is derived from it")
	}
	k, err := record.ParsePublicKey(p.RegistrationKey)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "registrationKey: %v", err)
	}
	derived := record.DerivedAccountID(k)
	if p.Account == "" {
		p.Account = derived
	} else if p.Account != derived {
		return nil, api.Errorf(api.CodeInvalidParams, "account: a passkey self-registration's account id is its registration key's, %s; a chosen id is registered by the developer", derived)
	}
	if err := s.checkIDs(p.Scope, p.Account); err != nil {
		return nil, err
	}
	st := s.State()
	seq, cfg, err := st.Scope(ctx, p.Scope)
	if err != nil {
		return nil, apiError(err)
	}
	if cfg.Mode == record.ModeDeveloper {
		return nil, api.Errorf(api.CodeAuthBadProof, "scope %s is in developer mode: its accounts are registered by the developer", p.Scope)
	}
	if ok, err := st.HasAccount(ctx, p.Scope, p.Account); err != nil {
		return nil, err
	} else if ok {
		return nil, api.Errorf(api.CodeAuthConflict, "account %s already exists in scope %s", p.Account, p.Scope)
	}
	b := &record.AccountRegisterBody{Scope: p.Scope, Account: p.Account, Time: s.now().Unix()}
	rand.Read(b.Nonce[:])
	b.RegistrationKey = &k
	b.ConfigSeq = &seq  // the account's mode follows the scope from this config on
	body := b.Marshal() // the Payload: no credential yet
	id, err := s.putChallenge(ctx, &challenge{kind: record.AccountRegister, scope: p.Scope, account: p.Account, body: body, expires: s.now().Add(ChallengeTTL)})
	if err != nil {
		return nil, err
	}
	uid := challengeOf([]byte(p.Scope + "/" + p.Account))
	return &api.InitiateResult{
		ChallengeID: id, Payload: base64.RawURLEncoding.EncodeToString(body),
		Challenge: base64.RawURLEncoding.EncodeToString(record.Challenge(record.AccountRegister, body)),
		RPID:      cfg.RPID, UserID: base64.RawURLEncoding.EncodeToString(uid[:16]),
		Timeout: int(ChallengeTTL / time.Millisecond),
	}, nil
}

// CompleteRegistration stores the account.register record authorised by
// the browser's attestation (keymesh_completeRegistration).
func (s *Service) CompleteRegistration(ctx context.Context, p api.CompleteRegistrationParams) (*api.Account, error) {
	c, err := s.takeChallenge(p.ChallengeID, record.AccountRegister)
	if err != nil {
		return nil, err
	}
	if len(p.Credential) == 0 || len(p.Credential) > record.MaxWebAuthn {
		return nil, api.Errorf(api.CodeInvalidParams, "credential must be the PublicKeyCredential JSON, at most %d bytes", record.MaxWebAuthn)
	}
	// The record's body names the passkey the attestation creates, so that
	// the body (the record's id) fixes what every node registers.
	b, err := record.DecodeAccountRegister(c.body)
	if err != nil {
		return nil, fmt.Errorf("auth: own registration payload: %w", err)
	}
	_, cfg, err := s.State().Scope(ctx, c.scope)
	if err != nil {
		return nil, apiError(err)
	}
	ch := record.Challenge(record.AccountRegister, c.body)
	cred, err := verifyAttestation(cfg, p.Credential, ch)
	if err != nil {
		return nil, api.Errorf(api.CodeAuthBadProof, "%v", err)
	}
	b.Credential = &cred
	r := &record.Record{Kind: record.AccountRegister, Body: b.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: p.Credential}}
	if b.RegistrationKey != nil {
		sig, err := base64.RawURLEncoding.DecodeString(p.Signature)
		if err != nil || len(sig) == 0 || len(sig) > 64 {
			return nil, api.Errorf(api.CodeInvalidParams, "signature: the registration key's base64url signature is required")
		}
		r.Auth = record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: p.Credential, Sig: sig}
	} else if p.Signature != "" {
		return nil, api.Errorf(api.CodeInvalidParams, "signature: the registration was initiated without a registration key")
	}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	return &api.Account{Scope: c.scope, Account: c.account}, nil
}

// InitiateAuthentication opens a passkey authentication that, once
// completed, authorises the client's session key
// (keymesh_initiateAuthentication): the challenge commits to the
// session.create payload (scope, account, session key, expiry, nonce).
func (s *Service) InitiateAuthentication(ctx context.Context, p api.InitiateAuthenticationParams) (*api.InitiateResult, error) {
	if err := s.checkIDs(p.Scope, p.Account); err != nil {
		return nil, err
	}
	key, err := record.ParsePublicKey(p.SessionKey)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "sessionKey: %v", err)
	}
	st := s.State()
	_, cfg, err := st.Scope(ctx, p.Scope)
	if err != nil {
		return nil, apiError(err)
	}
	creds, err := st.Credentials(ctx, p.Scope, p.Account)
	if err != nil {
		return nil, err
	}
	var allow []string
	for _, c := range creds {
		if c.Kind == record.CredPasskey {
			allow = append(allow, base64.RawURLEncoding.EncodeToString(c.ID))
		}
	}
	if len(allow) == 0 {
		// No such account, or no live passkey: answered like one that
		// has, so that the answer does not tell (decoy.go).
		id, err := s.decoyCredentialID(ctx, p.Scope, p.Account)
		if err != nil {
			return nil, err
		}
		allow = []string{base64.RawURLEncoding.EncodeToString(id)}
	}
	ttl := cfg.SessionTTL
	if p.TTL != 0 && p.TTL < ttl {
		ttl = p.TTL
	}
	now := s.now()
	b := &record.SessionCreateBody{Scope: p.Scope, Account: p.Account, Key: key, Issued: now.Unix(), Expiry: now.Add(time.Duration(ttl) * time.Second).Unix()}
	rand.Read(b.Nonce[:])
	body := b.Marshal()
	id, err := s.putChallenge(ctx, &challenge{kind: record.SessionCreate, scope: p.Scope, account: p.Account, body: body, expires: s.now().Add(ChallengeTTL)})
	if err != nil {
		return nil, err
	}
	return &api.InitiateResult{
		ChallengeID: id, Payload: base64.RawURLEncoding.EncodeToString(body),
		Challenge: base64.RawURLEncoding.EncodeToString(record.Challenge(record.SessionCreate, body)),
		RPID:      cfg.RPID, AllowCredentials: allow, Timeout: int(ChallengeTTL / time.Millisecond),
	}, nil
}

// CompleteAuthentication stores the session.create record authorised by
// the browser's assertion and returns it (keymesh_completeAuthentication).
func (s *Service) CompleteAuthentication(ctx context.Context, p api.CompleteAuthenticationParams) (*api.Session, error) {
	c, err := s.takeChallenge(p.ChallengeID, record.SessionCreate)
	if err != nil {
		return nil, err
	}
	if len(p.Credential) == 0 || len(p.Credential) > record.MaxWebAuthn {
		return nil, api.Errorf(api.CodeInvalidParams, "credential must be the PublicKeyCredential JSON, at most %d bytes", record.MaxWebAuthn)
	}
	r := &record.Record{Kind: record.SessionCreate, Body: c.body, Auth: record.Auth{Kind: record.AuthPasskeyGet, WebAuthn: p.Credential}}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	b, err := record.DecodeSessionCreate(c.body)
	if err != nil {
		return nil, fmt.Errorf("auth: own session body: %w", err)
	}
	return &api.Session{Scope: c.scope, Account: c.account, Record: base64.RawURLEncoding.EncodeToString(r.Marshal()), Expiry: b.Expiry}, nil
}

// SubmitAuthRecord stores a credential.add, credential.revoke,
// session.revoke or account.mode record (keymesh_submitAuthRecord); the
// other kinds have their own methods.
func (s *Service) SubmitAuthRecord(ctx context.Context, p api.SignedRecord) (*api.Account, error) {
	r, err := decodeRecordParam(p.Record)
	if err != nil {
		return nil, err
	}
	body, err := record.DecodeBody(r.Kind, r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: %v", r.Kind, err)
	}
	var scope, account string
	switch b := body.(type) {
	case *record.CredentialAddBody:
		scope, account = b.Scope, b.Account
	case *record.CredentialRevokeBody:
		scope, account = b.Scope, b.Account
	case *record.SessionRevokeBody:
		scope, account = b.Scope, b.Account
	case *record.AccountModeBody:
		scope, account = b.Scope, b.Account
	default:
		return nil, api.Errorf(api.CodeInvalidParams, "record is a %s; want credential.add, credential.revoke, session.revoke or account.mode", r.Kind)
	}
	if err := s.SubmitRecord(ctx, r); err != nil {
		return nil, apiError(err)
	}
	return &api.Account{Scope: scope, Account: account}, nil
}
