package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// Proof is one approval of one operation, as carried in the X-Keymesh-Auth
// header; Proofs joins several (hybrid mode: the user's and the
// developer's). It is the wire type api.Proof.
type Proof = api.Proof

// ApprovalTTL is how long the approvals made by Session and KeySigner stay
// valid (nodes refuse more than api.MaxApprovalTTL).
const ApprovalTTL = 2 * time.Minute

// Key is a developer or session signing key (P-256 or Ed25519). It never
// prints.
type Key struct{ k *record.PrivateKey }

// GenerateKey makes a new key; alg is "p256" or "ed25519".
func GenerateKey(alg string) (*Key, error) {
	var a record.Alg
	switch alg {
	case "p256":
		a = record.P256
	case "ed25519":
		a = record.Ed25519
	default:
		return nil, fmt.Errorf("client: key algorithm %q: want p256 or ed25519", alg)
	}
	k, err := record.GenerateKey(a)
	if err != nil {
		return nil, err
	}
	return &Key{k}, nil
}

// ParseKey parses a key written by Key.MarshalPrivate.
func ParseKey(s string) (*Key, error) {
	k, err := record.ParsePrivateKey(s)
	if err != nil {
		return nil, err
	}
	return &Key{k}, nil
}

// Public returns the public key, "p256:<base64url>" or "ed25519:<base64url>".
func (k *Key) Public() string { return k.k.Public().String() }

// MarshalPrivate returns the secret key's text form (store it like a
// password).
func (k *Key) MarshalPrivate() string { return k.k.MarshalPrivate() }

// String never shows the key.
func (k *Key) String() string { return "client.Key(" + k.Public() + ")" }

// Format never shows the key.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// ScopeConfig is a scope's configuration.
type ScopeConfig struct {
	RPID          string        // WebAuthn relying party id, e.g. "app.example"
	Origins       []string      // WebAuthn origins, e.g. "https://app.example"
	Mode          string        // "user", "developer" or "hybrid"
	SessionTTL    time.Duration // longest session lifetime (whole seconds)
	DeveloperKeys []string      // public keys; empty means the signing key only
	// DeveloperQuorum is how many of DeveloperKeys must sign a change of
	// the developer keys or of this quorum (m of k); 0 means a majority,
	// ⌊k/2⌋+1 (1 for a single key).
	DeveloperQuorum int
	// AllowRawDigest lets the scope's accounts sign raw 32-byte digests
	// (SignDigest, keymesh_signDigest). Leave it off unless the app needs
	// it: a raw digest may be a transaction's or another app's message.
	AllowRawDigest bool
	// Quota limits what the scope may use of the cluster: key generations
	// in flight, signatures per second per gateway, accounts and wallet
	// keys (api.ScopeQuota). Zero fields take the nodes' defaults.
	Quota api.ScopeQuota
}

func (c ScopeConfig) record(signer *Key) (record.ScopeConfig, error) {
	m, err := record.ParseMode(c.Mode)
	if err != nil {
		return record.ScopeConfig{}, err
	}
	if c.DeveloperQuorum < 0 || c.DeveloperQuorum > record.MaxDevKeys {
		return record.ScopeConfig{}, fmt.Errorf("developer quorum %d: want 0 (a majority) to %d", c.DeveloperQuorum, record.MaxDevKeys)
	}
	out := record.ScopeConfig{RPID: c.RPID, Origins: c.Origins, Mode: m, SessionTTL: uint32(c.SessionTTL / time.Second), AllowRawDigest: c.AllowRawDigest, DevQuorum: uint8(c.DeveloperQuorum),
		Quota: record.ScopeQuota{KeygensInFlight: c.Quota.KeygensInFlight, SignsPerSecond: c.Quota.SignaturesPerSecond, MaxAccounts: c.Quota.MaxAccounts, MaxKeys: c.Quota.MaxKeys}}
	keys := c.DeveloperKeys
	if len(keys) == 0 {
		keys = []string{signer.Public()}
	}
	for _, s := range keys {
		k, err := record.ParsePublicKey(s)
		if err != nil {
			return record.ScopeConfig{}, err
		}
		if out.HasDevKey(k) {
			return record.ScopeConfig{}, fmt.Errorf("developer key %s listed twice", s)
		}
		out.DevKeys = append(out.DevKeys, k)
	}
	return out, out.Check()
}

func encodeRecord(r *record.Record) api.SignedRecord {
	return api.SignedRecord{Record: base64.RawURLEncoding.EncodeToString(r.Marshal())}
}

// CreateScope creates a scope signed by dev (which must be one of
// cfg.DeveloperKeys) and returns it; its id is derived from the signed
// config and a random nonce.
func (c *Client) CreateScope(ctx context.Context, dev *Key, cfg ScopeConfig) (*api.Scope, error) {
	rc, err := cfg.record(dev)
	if err != nil {
		return nil, fmt.Errorf("client: scope config: %w", err)
	}
	b := &record.ScopeCreateBody{Config: rc}
	rand.Read(b.Nonce[:])
	r, err := record.Sign(record.ScopeCreate, b.Marshal(), dev.k)
	if err != nil {
		return nil, err
	}
	var out api.Scope
	if err := c.Call(ctx, api.MethodCreateScope, encodeRecord(r), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateScope replaces a scope's config; seq must be greater than the
// scope's current api.Scope.Seq. One developer key changes anything but
// the developer keys and their quorum; changing those takes
// UpdateScopeQuorum.
func (c *Client) UpdateScope(ctx context.Context, dev *Key, scope string, seq uint64, cfg ScopeConfig) (*api.Scope, error) {
	return c.UpdateScopeQuorum(ctx, []*Key{dev}, scope, seq, cfg)
}

// UpdateScopeQuorum is UpdateScope signed by every one of devs (distinct
// developer keys of the scope's current config): changing the developer
// keys or their quorum takes the current config's quorum of them
// (api.Scope.DevQuorum). cfg.DeveloperKeys empty means devs[0]'s key.
func (c *Client) UpdateScopeQuorum(ctx context.Context, devs []*Key, scope string, seq uint64, cfg ScopeConfig) (*api.Scope, error) {
	if len(devs) == 0 {
		return nil, errors.New("client: no developer key")
	}
	rc, err := cfg.record(devs[0])
	if err != nil {
		return nil, fmt.Errorf("client: scope config: %w", err)
	}
	b := &record.ScopeUpdateBody{Scope: scope, Seq: seq, Config: rc}
	ks := make([]*record.PrivateKey, len(devs))
	for i, d := range devs {
		ks[i] = d.k
	}
	r, err := record.SignQuorum(record.ScopeUpdate, b.Marshal(), ks...)
	if err != nil {
		return nil, err
	}
	var out api.Scope
	if err := c.Call(ctx, api.MethodUpdateScope, encodeRecord(r), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetScope returns a scope as the node has it.
func (c *Client) GetScope(ctx context.Context, scope string) (*api.Scope, error) {
	var out api.Scope
	if err := c.Call(ctx, api.MethodGetScope, api.GetScopeParams{Scope: scope}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DelegatedRegistrationRecord builds a delegated registration signed by
// dev: the canonical payload holds the scope, the user identifier, a
// fresh nonce and the current time, so it cannot be replayed. userKey, if
// not empty, is a public key the user can approve operations with.
//
// configSeq is the seq of the scope config the registration is made under
// (api.Scope.Seq, as GetScope or the developer's own records have it): the
// account takes that config's mode on every node, whatever order the
// registration and scope updates arrive in, so a mode change that
// overtakes the registration does not change the account's mode
// (docs/auth.md, "An account keeps the mode it was registered under").
func DelegatedRegistrationRecord(dev *Key, scope string, configSeq uint64, account, userKey string) (api.SignedRecord, error) {
	return delegatedRecord(dev, scope, account, userKey, &configSeq)
}

// delegatedRecord builds a delegated registration naming the scope config
// seq it is made under, if configSeq is set (nil: none, which nodes read
// as the scope's base config).
func delegatedRecord(dev *Key, scope, account, userKey string, configSeq *uint64) (api.SignedRecord, error) {
	b := &record.AccountRegisterBody{Scope: scope, Account: account, Time: time.Now().Unix(), ConfigSeq: configSeq}
	rand.Read(b.Nonce[:])
	if userKey != "" {
		k, err := record.ParsePublicKey(userKey)
		if err != nil {
			return api.SignedRecord{}, fmt.Errorf("client: user key: %w", err)
		}
		cred := record.KeyCredential(k)
		b.Credential = &cred
	}
	r, err := record.Sign(record.AccountRegister, b.Marshal(), dev.k)
	if err != nil {
		return api.SignedRecord{}, err
	}
	return encodeRecord(r), nil
}

// RegisterDelegated registers account in scope with the developer's key
// (developer-owned auth). See DelegatedRegistrationRecord.
func (c *Client) RegisterDelegated(ctx context.Context, dev *Key, scope, account, userKey string) (*api.Account, error) {
	// Name the config the registration is made under (its seq, as the
	// node has it), so that the account's mode does not depend on the
	// order nodes receive it and scope updates in.
	sc, err := c.GetScope(ctx, scope)
	if err != nil {
		return nil, err
	}
	seq := sc.Seq
	p, err := delegatedRecord(dev, scope, account, userKey, &seq)
	if err != nil {
		return nil, err
	}
	var out api.Account
	if err := c.Call(ctx, api.MethodDelegatedRegistration, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func newApproval(scope, account string, op Operation) *record.Approval {
	a := &record.Approval{Scope: scope, Account: account, Method: op.Method, Hash: op.Hash, Expiry: time.Now().Add(ApprovalTTL).Unix()}
	rand.Read(a.Nonce[:])
	return a
}

// Proofs returns the X-Keymesh-Auth header value carrying ps.
func Proofs(ps ...Proof) string { return (&api.Proofs{Approvals: ps}).Encode() }

// KeySigner approves operations with a plain key: the developer's (DOA,
// developer-owned auth) or the user's key credential of a delegated
// account.
type KeySigner struct {
	scope, account string
	key            *Key
	developer      bool
}

// DeveloperSigner approves operations on accounts of scope with a
// developer key.
func DeveloperSigner(dev *Key, scope string) *KeySigner {
	return &KeySigner{scope: scope, key: dev, developer: true}
}

// UserKeySigner approves operations on one account with the user's key
// credential (registered with RegisterDelegated's userKey).
func UserKeySigner(user *Key, scope, account string) *KeySigner {
	return &KeySigner{scope: scope, account: account, key: user}
}

// Sign returns an approval of op. A developer's approval names op.Account.
func (s *KeySigner) Sign(op Operation) (Proof, error) {
	account := s.account
	if s.developer {
		account = op.Account
	}
	if op.Scope != "" && op.Scope != s.scope {
		return Proof{}, fmt.Errorf("client: operation is for scope %s, signer for %s", op.Scope, s.scope)
	}
	a := newApproval(s.scope, account, op)
	sig, err := s.key.k.Sign(a.SigningMessage())
	if err != nil {
		return Proof{}, err
	}
	p := Proof{Approval: base64.RawURLEncoding.EncodeToString(a.Marshal()), Sig: base64.RawURLEncoding.EncodeToString(sig)}
	if s.developer {
		p.Developer = s.key.Public()
	} else {
		p.Key = s.key.Public()
	}
	return p, nil
}

// Approve returns the X-Keymesh-Auth value approving op with this key
// alone (it implements Approver).
func (s *KeySigner) Approve(_ context.Context, op Operation) (string, error) {
	p, err := s.Sign(op)
	if err != nil {
		return "", err
	}
	return Proofs(p), nil
}

// Session is an authorised session key: a key the client generated,
// authorised by a passkey assertion (keymesh_completeAuthentication), that
// approves operations without a passkey prompt each time until Expiry.
type Session struct {
	Scope, Account string
	Expiry         time.Time
	key            *Key
	record         string
}

// NewSession joins a session key with the session returned by
// keymesh_completeAuthentication for its public key.
func NewSession(key *Key, s *api.Session) (*Session, error) {
	b, err := base64.RawURLEncoding.DecodeString(s.Record)
	if err != nil {
		return nil, errors.New("client: session record is not base64url")
	}
	r, err := record.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("client: session record: %w", err)
	}
	sb, err := record.DecodeSessionCreate(r.Body)
	if err != nil || r.Kind != record.SessionCreate {
		return nil, fmt.Errorf("client: not a session record")
	}
	if sb.Key.String() != key.Public() {
		return nil, errors.New("client: the session authorises another key")
	}
	return &Session{Scope: sb.Scope, Account: sb.Account, Expiry: time.Unix(sb.Expiry, 0), key: key, record: s.Record}, nil
}

// Sign returns the session key's approval of op.
func (s *Session) Sign(op Operation) (Proof, error) {
	if op.Scope != "" && op.Scope != s.Scope || op.Account != "" && op.Account != s.Account {
		return Proof{}, fmt.Errorf("client: operation is for %s/%s, session for %s/%s", op.Scope, op.Account, s.Scope, s.Account)
	}
	a := newApproval(s.Scope, s.Account, op)
	sig, err := s.key.k.Sign(a.SigningMessage())
	if err != nil {
		return Proof{}, err
	}
	return Proof{Approval: base64.RawURLEncoding.EncodeToString(a.Marshal()), Session: s.record, Sig: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// Approve returns the X-Keymesh-Auth value approving op with the session
// key alone (it implements Approver) (for a scope in user mode; in hybrid mode join it with a
// developer's Proof with Proofs).
func (s *Session) Approve(_ context.Context, op Operation) (string, error) {
	p, err := s.Sign(op)
	if err != nil {
		return "", err
	}
	return Proofs(p), nil
}

// InitiateRegistration, CompleteRegistration, InitiateAuthentication and
// CompleteAuthentication are the passkey ceremonies' JSON-RPC calls; the
// WebAuthn steps between them run in a browser (see the node's /login
// page). credential is the browser's PublicKeyCredential JSON.
// Registrations need a registration key now (nodes refuse
// InitiateRegistration): use InitiateKeyedRegistration and
// CompleteKeyedRegistration.
func (c *Client) InitiateRegistration(ctx context.Context, scope, account string) (*api.InitiateResult, error) {
	var out api.InitiateResult
	err := c.Call(ctx, api.MethodInitiateRegistration, api.InitiateRegistrationParams{Scope: scope, Account: account}, &out)
	return &out, err
}

// DerivedAccountID is the account id a passkey self-registration with
// regKey takes (record.DerivedAccountID): nodes accept no other, so that
// no one but regKey's holder can register, or squat, it. Keep it (or
// regKey's public key) to sign in; a chosen id (an e-mail address, a
// name) is registered by the scope's developer
// (DelegatedRegistrationRecord).
func DerivedAccountID(regKey *Key) string { return record.DerivedAccountID(regKey.k.Public()) }

// InitiateKeyedRegistration opens a passkey registration bound to regKey,
// a key generated for this registration alone (GenerateKey): the payload,
// and so the challenge, commit to it, and CompleteKeyedRegistration signs
// the attestation with it, so that no node that sees the challenge can
// register a passkey of its own under it. It checks that the payload the
// node returns is for scope and account, holds regKey, and is what the
// challenge commits to. account must be DerivedAccountID(regKey), or ""
// for that id.
func (c *Client) InitiateKeyedRegistration(ctx context.Context, scope, account string, regKey *Key) (*api.InitiateResult, error) {
	if account == "" {
		account = DerivedAccountID(regKey)
	}
	var out api.InitiateResult
	if err := c.Call(ctx, api.MethodInitiateRegistration, api.InitiateRegistrationParams{Scope: scope, Account: account, RegistrationKey: regKey.Public()}, &out); err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(out.Payload)
	if err != nil {
		return nil, errors.New("client: registration payload is not base64url")
	}
	b, err := record.DecodeAccountRegister(payload)
	if err != nil || b.Scope != scope || b.Account != account || b.Credential != nil || b.RegistrationKey == nil || b.RegistrationKey.String() != regKey.Public() {
		return nil, errors.New("client: the node's registration payload is not for this account and registration key")
	}
	if out.Challenge != base64.RawURLEncoding.EncodeToString(record.Challenge(record.AccountRegister, payload)) {
		return nil, errors.New("client: the node's challenge does not commit to its payload")
	}
	return &out, nil
}

// CompleteKeyedRegistration completes a registration opened by
// InitiateKeyedRegistration: credential is the browser's (or
// authenticator's) response to init.Challenge, which regKey signs.
func (c *Client) CompleteKeyedRegistration(ctx context.Context, init *api.InitiateResult, credential json.RawMessage, regKey *Key) (*api.Account, error) {
	ch, err := base64.RawURLEncoding.DecodeString(init.Challenge)
	if err != nil {
		return nil, errors.New("client: challenge is not base64url")
	}
	// Sign exactly the bytes the node will receive: the params encoder
	// compacts (and HTML-escapes) a RawMessage.
	wire, err := json.Marshal(credential)
	if err != nil {
		return nil, fmt.Errorf("client: credential: %w", err)
	}
	sig, err := regKey.k.Sign(record.RegistrationMessage(ch, wire))
	if err != nil {
		return nil, err
	}
	var out api.Account
	err = c.Call(ctx, api.MethodCompleteRegistration, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: wire, Signature: base64.RawURLEncoding.EncodeToString(sig)}, &out)
	return &out, err
}

// CompleteRegistration: see InitiateRegistration.
func (c *Client) CompleteRegistration(ctx context.Context, challengeID string, credential json.RawMessage) (*api.Account, error) {
	var out api.Account
	err := c.Call(ctx, api.MethodCompleteRegistration, api.CompleteRegistrationParams{ChallengeID: challengeID, Credential: credential}, &out)
	return &out, err
}

// InitiateAuthentication: see InitiateRegistration. sessionKey is the
// public key to authorise.
func (c *Client) InitiateAuthentication(ctx context.Context, scope, account, sessionKey string) (*api.InitiateResult, error) {
	var out api.InitiateResult
	err := c.Call(ctx, api.MethodInitiateAuthentication, api.InitiateAuthenticationParams{Scope: scope, Account: account, SessionKey: sessionKey}, &out)
	return &out, err
}

// CompleteAuthentication: see InitiateRegistration.
func (c *Client) CompleteAuthentication(ctx context.Context, challengeID string, credential json.RawMessage) (*api.Session, error) {
	var out api.Session
	err := c.Call(ctx, api.MethodCompleteAuthentication, api.CompleteAuthenticationParams{ChallengeID: challengeID, Credential: credential}, &out)
	return &out, err
}

// Both signers implement Approver.
var (
	_ Approver = (*Session)(nil)
	_ Approver = (*KeySigner)(nil)
)

// ProofSigner makes one approval of an operation: Session and KeySigner.
type ProofSigner interface {
	Sign(op Operation) (Proof, error)
}

// HybridApprover approves each operation with every one of signers (for a
// scope in hybrid mode: the user's session and the developer's key).
func HybridApprover(signers ...ProofSigner) Approver {
	return ApproverFunc(func(_ context.Context, op Operation) (string, error) {
		ps := make([]Proof, 0, len(signers))
		for _, s := range signers {
			p, err := s.Sign(op)
			if err != nil {
				return "", err
			}
			ps = append(ps, p)
		}
		return Proofs(ps...), nil
	})
}

// Revoke revokes the session key for good (log out): the session key
// signs a session.revoke record, which every node stores; from then on no
// node accepts its approvals.
func (s *Session) Revoke(ctx context.Context, c *Client) error {
	b := &record.SessionRevokeBody{Scope: s.Scope, Account: s.Account, Session: s.key.k.Public().ID()}
	r, err := record.Sign(record.SessionRevoke, b.Marshal(), s.key.k)
	if err != nil {
		return err
	}
	return c.Call(ctx, api.MethodSubmitAuthRecord, encodeRecord(r), nil)
}

// SetAccountMode moves an account to its scope's current mode (an
// account otherwise keeps the mode it was registered under): signer is the
// user's plain-key credential while the account is in user or hybrid mode
// (the user's consent), a developer key while it is in developer mode. seq
// must be greater than the account's last such change (the first is 1).
// A passkey user consents with an assertion over the same record (see
// docs/auth.md).
func (c *Client) SetAccountMode(ctx context.Context, signer *Key, scope, account, mode string, seq uint64) error {
	m, err := record.ParseMode(mode)
	if err != nil {
		return err
	}
	b := &record.AccountModeBody{Scope: scope, Account: account, Seq: seq, Mode: m}
	r, err := record.Sign(record.AccountMode, b.Marshal(), signer.k)
	if err != nil {
		return err
	}
	return c.Call(ctx, api.MethodSubmitAuthRecord, encodeRecord(r), nil)
}

// RevokeCredential revokes one of an account's credentials for good with
// a developer key (credentialID as in api.InitiateResult.AllowCredentials:
// base64url). Sessions that the credential authorised stop working too.
func (c *Client) RevokeCredential(ctx context.Context, dev *Key, scope, account, credentialID string) error {
	id, err := base64.RawURLEncoding.DecodeString(credentialID)
	if err != nil || len(id) == 0 {
		return errors.New("client: credential id must be base64url")
	}
	b := &record.CredentialRevokeBody{Scope: scope, Account: account, CredentialID: id}
	r, err := record.Sign(record.CredentialRevoke, b.Marshal(), dev.k)
	if err != nil {
		return err
	}
	return c.Call(ctx, api.MethodSubmitAuthRecord, encodeRecord(r), nil)
}
