package api

import "encoding/json"

// Auth methods (package internal/auth; Passport's names without the
// keymesh_ prefix are aliases where marked):
//
//	keymesh_createScope (createScope)        SignedRecord (scope.create)       → Scope
//	keymesh_updateScope (updateScope)        SignedRecord (scope.update)       → Scope
//	keymesh_getScope                         {"scope": id}                     → Scope
//	keymesh_initiateRegistration (initiateRegistration)      InitiateRegistrationParams   → InitiateResult
//	keymesh_completeRegistration (completeRegistration)      CompleteRegistrationParams   → Account
//	keymesh_initiateAuthentication (initiateAuthentication)  InitiateAuthenticationParams → InitiateResult
//	keymesh_completeAuthentication (completeAuthentication)  CompleteAuthenticationParams → Session
//	keymesh_delegatedRegistration (delegatedRegistration)    SignedRecord (account.register, developer-signed) → Account
//	keymesh_submitAuthRecord                 SignedRecord (credential.add/revoke, session.revoke) → Account
//
// A ceremony is completed on the node that initiated it (challenges are
// single-use, expire after 5 minutes and live in that node's memory).
// Operations on accounts carry their approvals in the X-Keymesh-Auth
// header (ProofsHeader): base64url of {"approvals": [...]}, see Proofs and
// the client package's Session and KeySigner, which make it.
//
// Auth method names; the Alias… names are Passport's, which a node accepts
// for the same methods.
const (
	MethodCreateScope            = "keymesh_createScope"
	MethodUpdateScope            = "keymesh_updateScope"
	MethodGetScope               = "keymesh_getScope"
	MethodInitiateRegistration   = "keymesh_initiateRegistration"
	MethodCompleteRegistration   = "keymesh_completeRegistration"
	MethodInitiateAuthentication = "keymesh_initiateAuthentication"
	MethodCompleteAuthentication = "keymesh_completeAuthentication"
	MethodDelegatedRegistration  = "keymesh_delegatedRegistration"
	MethodSubmitAuthRecord       = "keymesh_submitAuthRecord"

	AliasCreateScope            = "createScope"
	AliasUpdateScope            = "updateScope"
	AliasInitiateRegistration   = "initiateRegistration"
	AliasCompleteRegistration   = "completeRegistration"
	AliasInitiateAuthentication = "initiateAuthentication"
	AliasCompleteAuthentication = "completeAuthentication"
	AliasDelegatedRegistration  = "delegatedRegistration"
)

// Authorization denials (package auth), one code per kind so that a client
// can tell them apart. They sit in JSON-RPC 2.0's implementation-defined
// server-error range (-32000..-32099), after keymesh's general codes.
const (
	CodeAuthMissing        = -32010 // no approval for this operation was presented
	CodeAuthBadProof       = -32011 // a proof is malformed or its signature is over another payload
	CodeAuthWrongScope     = -32012 // the approval is for another scope or account
	CodeAuthWrongOperation = -32013 // the approval is for another method or operation hash
	CodeAuthReplay         = -32014 // the approval's nonce was already used by another request
	CodeAuthExpired        = -32015 // the approval, session or challenge has expired
	CodeAuthRevoked        = -32016 // the credential or session key was revoked
	CodeAuthIncomplete     = -32017 // the scope's mode needs another party's approval too (hybrid)
	CodeAuthUnknown        = -32018 // unknown scope, account, credential or challenge
	CodeAuthConflict       = -32019 // the account or scope already exists, or the record conflicts with the state
)

// Scope is a scope's public configuration, as keymesh_createScope and
// keymesh_updateScope return it.
type Scope struct {
	ID         string   `json:"id"`
	Seq        uint64   `json:"seq"`
	RPID       string   `json:"rpId"`
	Origins    []string `json:"origins"`
	Mode       string   `json:"mode"`          // user, developer or hybrid
	SessionTTL uint32   `json:"sessionTtl"`    // seconds
	DevKeys    []string `json:"developerKeys"` // "p256:<base64url>" or "ed25519:<base64url>"
	// AllowRawDigest: the scope's accounts may sign raw digests
	// (keymesh_signDigest); off by default.
	AllowRawDigest bool `json:"allowRawDigest,omitempty"`
	// DevQuorum is how many of DevKeys must sign a change of the developer
	// keys or of this quorum (the effective value: a majority unless the
	// config names one).
	DevQuorum int `json:"developerQuorum"`
	// Quota is what the scope may use of the cluster, as its config sets
	// it (zero fields: the nodes' defaults).
	Quota ScopeQuota `json:"quota"`
}

// ScopeQuota is a scope's quotas as its config sets them (issue 16). A
// zero field means the nodes' default: 2 key generations in flight, 50
// signatures a second per gateway, 100,000 accounts, 100,000 wallet keys.
// Each node applies them to its own work, so a scope using every gateway
// of an n-node cluster signs up to n × SignaturesPerSecond; nodes clamp
// SignaturesPerSecond to 1000. A request over a quota gets
// CodeRateLimited (rates) or CodeLimitExceeded (counts).
type ScopeQuota struct {
	KeygensInFlight     uint32 `json:"keygensInFlight,omitempty"`     // key generations of the scope at once, per node
	SignaturesPerSecond uint32 `json:"signaturesPerSecond,omitempty"` // signatures per second, per node as gateway
	MaxAccounts         uint32 `json:"maxAccounts,omitempty"`         // accounts in the scope
	MaxKeys             uint32 `json:"maxKeys,omitempty"`             // wallet keys in the scope
}

// GetScopeParams are keymesh_getScope's params.
type GetScopeParams struct {
	Scope string `json:"scope"`
}

// SignedRecord carries one signed record (base64url of its canonical
// encoding, see internal/record): the params of keymesh_createScope,
// keymesh_updateScope and keymesh_delegatedRegistration.
type SignedRecord struct {
	Record string `json:"record"`
}

// InitiateRegistrationParams are keymesh_initiateRegistration's params.
type InitiateRegistrationParams struct {
	Scope   string `json:"scope"`
	Account string `json:"account"` // the user identifier
	// RegistrationKey ("p256:…" or "ed25519:…"; required: the account id
	// is derived from it, record.DerivedAccountID) is a key the
	// client generated for this registration: the payload, and so the
	// challenge, commit to it, and it signs the attestation
	// (CompleteRegistrationParams.Signature), so that no one else who sees
	// the challenge can register a passkey of their own under it.
	RegistrationKey string `json:"registrationKey,omitempty"`
}

// InitiateResult is what keymesh_initiateRegistration and
// keymesh_initiateAuthentication return: the challenge id to send back,
// the payload (base64url of the canonical record body the challenge
// commits to) and the WebAuthn options for navigator.credentials.
type InitiateResult struct {
	ChallengeID string `json:"challengeId"`
	Payload     string `json:"payload"`
	Challenge   string `json:"challenge"` // base64url
	RPID        string `json:"rpId"`
	// UserID is the WebAuthn user handle (base64url) for registration.
	UserID string `json:"userId,omitempty"`
	// AllowCredentials are the account's credential ids (base64url) for
	// authentication.
	AllowCredentials []string `json:"allowCredentials,omitempty"`
	Timeout          int      `json:"timeout"` // milliseconds
}

// CompleteRegistrationParams are keymesh_completeRegistration's params:
// Credential is the JSON of the browser's PublicKeyCredential.
type CompleteRegistrationParams struct {
	ChallengeID string          `json:"challengeId"`
	Credential  json.RawMessage `json:"credential"`
	// Signature (base64url) is the registration key's signature over
	// record.RegistrationMessage(challenge, Credential), required when the
	// registration was initiated with a RegistrationKey.
	Signature string `json:"signature,omitempty"`
}

// InitiateAuthenticationParams are keymesh_initiateAuthentication's
// params: SessionKey is the public key ("p256:…") of the session key the
// client generated, which completing authentication authorises.
type InitiateAuthenticationParams struct {
	Scope      string `json:"scope"`
	Account    string `json:"account"`
	SessionKey string `json:"sessionKey"`
	// TTL is the session's lifetime in seconds (0: the scope's
	// maximum); it is capped at the scope's session lifetime.
	TTL uint32 `json:"ttl,omitempty"`
}

// CompleteAuthenticationParams are keymesh_completeAuthentication's params.
type CompleteAuthenticationParams struct {
	ChallengeID string          `json:"challengeId"`
	Credential  json.RawMessage `json:"credential"`
}

// Account is a registered account.
type Account struct {
	Scope   string `json:"scope"`
	Account string `json:"account"`
}

// Session is an authorised session: Record is the signed session.create
// record (base64url) that the client presents with each approval.
type Session struct {
	Scope   string `json:"scope"`
	Account string `json:"account"`
	Record  string `json:"record"`
	Expiry  int64  `json:"expiry"` // unix seconds
}
