package record

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Mode is a scope's account-control mode: whose approval an operation on
// one of its accounts needs.
type Mode uint8

const (
	ModeUser      Mode = 1 // the user's (passkey or session key)
	ModeDeveloper Mode = 2 // the developer's (DOA signature)
	ModeHybrid    Mode = 3 // both
)

func (m Mode) String() string {
	switch m {
	case ModeUser:
		return "user"
	case ModeDeveloper:
		return "developer"
	case ModeHybrid:
		return "hybrid"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "user", "developer" or "hybrid".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeUser, ModeDeveloper, ModeHybrid} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: mode %q: want user, developer or hybrid", ErrMalformed, s)
}

// Limits of the fields of a record body.
const (
	MaxScopeID      = 64
	MaxAccountID    = 128
	MaxRPID         = 253
	MaxOrigin       = 256
	MaxOrigins      = 8
	MaxDevKeys      = 8
	MaxMethod       = 64
	MaxCredentialID = 1023 // WebAuthn §5.8.3 credential ids are at most 1023 bytes
	MaxCOSEKey      = 1024
)

// accountRE is what an account id (a user identifier chosen by the
// developer or the user: a name, an e-mail address, a number) may hold.
var accountRE = regexp.MustCompile(`^[A-Za-z0-9._@+\-]{1,128}$`)

// scopeRE is what a scope id looks like (see ScopeCreateBody.ScopeID).
var scopeRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// CheckAccountID reports whether s is a valid account id.
func CheckAccountID(s string) error {
	if !accountRE.MatchString(s) {
		return fmt.Errorf("%w: account id must be 1 to 128 of A-Z a-z 0-9 . _ @ + -", ErrMalformed)
	}
	return nil
}

// DerivedAccountPrefix starts every account id derived from a
// registration key (DerivedAccountID), and no other: a delegated
// registration cannot take one.
const DerivedAccountPrefix = "rk-"

// DerivedAccountID is the account id of a passkey self-registration made
// with registration key k: DerivedAccountPrefix and the first 20 bytes of
// SHA-256(String("keymesh/account-id/v1") ‖ k's encoding), in hex. Only
// the holder of k signs a registration for it (AuthPasskeyCreateKeyed),
// so no one else can register, or squat, that id.
func DerivedAccountID(k PublicKey) string {
	var w Writer
	w.String("keymesh/account-id/v1")
	k.Encode(&w)
	h := sha256.Sum256(w.Bytes())
	return DerivedAccountPrefix + hex.EncodeToString(h[:20])
}

// IsDerivedAccountID reports whether s is in the form of a derived
// account id (DerivedAccountPrefix).
func IsDerivedAccountID(s string) bool { return strings.HasPrefix(s, DerivedAccountPrefix) }

// CheckScopeID reports whether s is a valid scope id.
func CheckScopeID(s string) error {
	if !scopeRE.MatchString(s) {
		return fmt.Errorf("%w: scope id must be 32 lowercase hex digits", ErrMalformed)
	}
	return nil
}

// ScopeConfig is a scope's configuration, set by its developer.
type ScopeConfig struct {
	RPID       string      // WebAuthn relying party id (a domain)
	Origins    []string    // allowed WebAuthn origins, e.g. https://app.example
	Mode       Mode        // account-control mode
	SessionTTL uint32      // longest session lifetime, seconds
	DevKeys    []PublicKey // keys allowed to update the scope and to sign DOA approvals
	// AllowRawDigest lets the scope's accounts sign raw 32-byte digests
	// (keymesh_signDigest). Off by default: a raw digest may be a
	// transaction's or another app's message, which the approver cannot read.
	AllowRawDigest bool
	// DevQuorum is how many of DevKeys must sign a scope.update that
	// changes DevKeys or DevQuorum (m of k). Zero means the default,
	// DefaultDevQuorum(len(DevKeys)); otherwise 1 to len(DevKeys).
	DevQuorum uint8
	// Quota limits what the scope may use of the cluster (issue 16); a
	// zero field means the node's default (auth.Quota).
	Quota ScopeQuota
}

// ScopeQuota is a scope's quotas, each zero for the default. Nodes apply
// them to their own work (auth.Service.Quota says how) and may clamp them
// to their operator's limits.
type ScopeQuota struct {
	KeygensInFlight uint32 // key generations of the scope at once, per node
	SignsPerSecond  uint32 // signatures per second as gateway, per node
	MaxAccounts     uint32 // accounts in the scope
	MaxKeys         uint32 // wallet keys in the scope
}

// DefaultDevQuorum is the developer-key quorum of a config that names
// none: a majority of its k keys, ⌊k/2⌋ + 1. A single-key scope (every
// scope made before quorums existed, unless it listed several keys) keeps
// working with its one key; with two or more keys, no single key can
// change the key set alone.
func DefaultDevQuorum(k int) int { return k/2 + 1 }

// Quorum returns the number of developer keys that must sign a change of
// the developer keys or of the quorum itself.
func (c *ScopeConfig) Quorum() int {
	if c.DevQuorum != 0 {
		return int(c.DevQuorum)
	}
	return DefaultDevQuorum(len(c.DevKeys))
}

// Scope config flags: the bits of the optional flags byte that ends a
// config's encoding.
const (
	flagAllowRawDigest uint8 = 1 << 0
	// flagDevQuorum: a quorum byte (ScopeConfig.DevQuorum) follows the
	// flags byte.
	flagDevQuorum uint8 = 1 << 1
	// flagQuota: the quota (ScopeConfig.Quota: four u32)
	// follows the flags byte and the quorum byte, if any.
	flagQuota uint8 = 1 << 2

	knownScopeFlags = flagAllowRawDigest | flagDevQuorum | flagQuota
)

func (c *ScopeConfig) flags() uint8 {
	var f uint8
	if c.AllowRawDigest {
		f |= flagAllowRawDigest
	}
	if c.DevQuorum != 0 {
		f |= flagDevQuorum
	}
	if c.Quota != (ScopeQuota{}) {
		f |= flagQuota
	}
	return f
}

// Check reports whether c is usable.
func (c *ScopeConfig) Check() error {
	switch {
	case c.RPID == "" || len(c.RPID) > MaxRPID:
		return fmt.Errorf("%w: rp id must be 1 to %d bytes", ErrMalformed, MaxRPID)
	case len(c.Origins) == 0 || len(c.Origins) > MaxOrigins:
		return fmt.Errorf("%w: 1 to %d origins", ErrMalformed, MaxOrigins)
	case c.Mode < ModeUser || c.Mode > ModeHybrid:
		return fmt.Errorf("%w: unknown mode %d", ErrMalformed, c.Mode)
	case c.SessionTTL == 0 || c.SessionTTL > 30*24*3600:
		return fmt.Errorf("%w: session lifetime must be 1 s to 30 days", ErrMalformed)
	case len(c.DevKeys) == 0 || len(c.DevKeys) > MaxDevKeys:
		return fmt.Errorf("%w: 1 to %d developer keys", ErrMalformed, MaxDevKeys)
	case int(c.DevQuorum) > len(c.DevKeys):
		return fmt.Errorf("%w: developer-key quorum %d of %d keys", ErrMalformed, c.DevQuorum, len(c.DevKeys))
	}

	for _, o := range c.Origins {
		if o == "" || len(o) > MaxOrigin {
			return fmt.Errorf("%w: origin must be 1 to %d bytes", ErrMalformed, MaxOrigin)
		}
	}
	for _, k := range c.DevKeys {
		if err := k.Check(); err != nil {
			return err
		}
	}
	return nil
}

// HasDevKey reports whether k is one of the developer keys.
func (c *ScopeConfig) HasDevKey(k PublicKey) bool {
	for _, d := range c.DevKeys {
		if d.Equal(k) {
			return true
		}
	}
	return false
}

func (c *ScopeConfig) encode(w *Writer) {
	w.String(c.RPID)
	w.U32(uint32(len(c.Origins)))
	for _, o := range c.Origins {
		w.String(o)
	}
	w.U8(uint8(c.Mode))
	w.U32(c.SessionTTL)
	w.U32(uint32(len(c.DevKeys)))
	for _, k := range c.DevKeys {
		k.Encode(w)
	}
	// The flags byte came after the first encoding: it is written only
	// when a flag is set, so that a config without flags keeps the
	// encoding (and a scope its id and signed records) it always had.
	if f := c.flags(); f != 0 {
		w.U8(f)
		if f&flagDevQuorum != 0 {
			w.U8(c.DevQuorum)
		}
		if f&flagQuota != 0 {
			w.U32(c.Quota.KeygensInFlight)
			w.U32(c.Quota.SignsPerSecond)
			w.U32(c.Quota.MaxAccounts)
			w.U32(c.Quota.MaxKeys)
		}
	}
}

func decodeScopeConfig(r *Reader) ScopeConfig {
	var c ScopeConfig
	c.RPID = r.String(MaxRPID, "rp id")
	n := r.Count(MaxOrigins, "origins")
	for range n {
		c.Origins = append(c.Origins, r.String(MaxOrigin, "origin"))
	}
	c.Mode = Mode(r.U8("mode"))
	c.SessionTTL = r.U32("session lifetime")
	n = r.Count(MaxDevKeys, "developer keys")
	for range n {
		c.DevKeys = append(c.DevKeys, DecodePublicKey(r))
	}
	// An optional flags byte ends the config (it is the last field of
	// every encoding that holds one): absent means no flags; present, it
	// must be non-zero and name only known flags (one encoding per value).
	if r.Err() == nil && r.more() {
		switch f := r.U8("flags"); {
		case f == 0:
			r.fail("flags: zero flags byte (omit it)")
		case f&^knownScopeFlags != 0:
			r.fail("flags: unknown flags %#02x", f&^knownScopeFlags)
		default:
			c.AllowRawDigest = f&flagAllowRawDigest != 0
			if f&flagDevQuorum != 0 {
				// Present only when set: zero would be the default, spelt
				// a second way.
				if c.DevQuorum = r.U8("developer-key quorum"); r.Err() == nil && c.DevQuorum == 0 {
					r.fail("developer-key quorum: zero (omit it)")
				}
			}
			if f&flagQuota != 0 {
				c.Quota.KeygensInFlight = r.U32("quota: key generations in flight")
				c.Quota.SignsPerSecond = r.U32("quota: signatures per second")
				c.Quota.MaxAccounts = r.U32("quota: accounts")
				c.Quota.MaxKeys = r.U32("quota: wallet keys")
				if r.Err() == nil && c.Quota == (ScopeQuota{}) {
					r.fail("quota: all zero (omit it)") // the defaults, spelt a second way
				}
			}
		}
	}
	if r.Err() == nil {
		if err := c.Check(); err != nil {
			r.fail("%v", err)
		}
	}
	return c
}

// CredentialKind is how a credential proves itself.
type CredentialKind uint8

const (
	// CredPasskey: a WebAuthn credential; PublicKey is its COSE key.
	CredPasskey CredentialKind = 1
	// CredKey: a plain key; PublicKey is a PublicKey encoding.
	CredKey CredentialKind = 2
)

// Credential is one way a user proves they control an account.
type Credential struct {
	ID        []byte
	Kind      CredentialKind
	PublicKey []byte
}

func (c *Credential) encode(w *Writer) {
	w.Var(c.ID)
	w.U8(uint8(c.Kind))
	w.Var(c.PublicKey)
}

func decodeCredential(r *Reader) Credential {
	c := Credential{ID: r.Var(MaxCredentialID, "credential id"), Kind: CredentialKind(r.U8("credential kind")), PublicKey: r.Var(MaxCOSEKey, "credential key")}
	if r.Err() != nil {
		return c
	}
	if len(c.ID) == 0 {
		r.fail("empty credential id")
	}
	switch c.Kind {
	case CredPasskey:
		if len(c.PublicKey) == 0 {
			r.fail("empty passkey public key")
		}
	case CredKey:
		kr := NewReader(c.PublicKey)
		k := DecodePublicKey(kr)
		if err := kr.Done(); err != nil {
			r.fail("credential key: %v", err)
		} else if id := k.ID(); string(c.ID) != string(id[:]) {
			// A plain key's id is derived from it (KeyCredential), so
			// that one key is one credential: it cannot be registered
			// again under another id, nor a revocation of its id dodged.
			r.fail("credential id is not the key's id")
		}
	default:
		r.fail("unknown credential kind %d", c.Kind)
	}
	return c
}

// KeyCredential makes a CredKey credential for k; its id is k.ID().
func KeyCredential(k PublicKey) Credential {
	var w Writer
	k.Encode(&w)
	id := k.ID()
	return Credential{ID: id[:], Kind: CredKey, PublicKey: w.Bytes()}
}

// Key returns a CredKey credential's key.
func (c *Credential) Key() (PublicKey, error) {
	if c.Kind != CredKey {
		return PublicKey{}, fmt.Errorf("record: credential is not a plain key")
	}
	r := NewReader(c.PublicKey)
	k := DecodePublicKey(r)
	return k, r.Done()
}

func checkIDs(r *Reader, scope, account string) {
	if r.Err() != nil {
		return
	}
	if err := CheckScopeID(scope); err != nil {
		r.fail("%v", err)
	} else if err := CheckAccountID(account); err != nil {
		r.fail("%v", err)
	}
}

// ScopeCreateBody creates a scope. It must be signed by one of
// Config.DevKeys.
type ScopeCreateBody struct {
	Nonce  [16]byte
	Config ScopeConfig
}

// ScopeID is the new scope's id: the first 16 bytes of
// SHA-256("keymesh/scope-id/v1" ‖ body), in hex, so that no one can choose
// (or squat) another developer's id.
func (b *ScopeCreateBody) ScopeID() string {
	h := sha256.Sum256(append([]byte("keymesh/scope-id/v1"), b.Marshal()...))
	return hex.EncodeToString(h[:16])
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *ScopeCreateBody) Marshal() []byte {
	var w Writer
	w.Fixed(b.Nonce[:])
	b.Config.encode(&w)
	return w.Bytes()
}

// DecodeScopeCreate decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeScopeCreate(p []byte) (*ScopeCreateBody, error) {
	r := NewReader(p)
	b := &ScopeCreateBody{}
	r.Fixed(b.Nonce[:], "nonce")
	b.Config = decodeScopeConfig(r)
	return b, r.Done()
}

// ScopeUpdateBody replaces a scope's config. Seq must be greater than the
// scope's current sequence number (0 after create); it must be signed by a
// developer key of the current config.
type ScopeUpdateBody struct {
	Scope  string
	Seq    uint64
	Config ScopeConfig
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *ScopeUpdateBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.U64(b.Seq)
	b.Config.encode(&w)
	return w.Bytes()
}

// DecodeScopeUpdate decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeScopeUpdate(p []byte) (*ScopeUpdateBody, error) {
	r := NewReader(p)
	b := &ScopeUpdateBody{Scope: r.String(MaxScopeID, "scope")}
	b.Seq = r.U64("seq")
	b.Config = decodeScopeConfig(r)
	if r.Err() == nil {
		if err := CheckScopeID(b.Scope); err != nil {
			r.fail("%v", err)
		}
	}
	return b, r.Done()
}

// AccountRegisterBody registers account Account in Scope. It is the
// canonical payload of a registration: scope id, user identifier, a nonce
// and a timestamp (unix seconds), so that a signed registration cannot be
// replayed for another account or scope, or again later. A passkey
// registration is authorised by an attestation whose challenge commits to
// its Payload. A delegated registration is signed by a developer key and
// may carry a plain-key Credential for the user.
//
// A passkey registration's body names the passkey it registers
// (Credential, the credential id and COSE key of the attestation), so that
// what a node applies is fixed by the body the record is identified by:
// the attestation only proves it, and must match it. Its challenge cannot
// commit to a credential that does not exist yet, so it commits to the
// Payload (the body without Credential); RegistrationKey, a key the client
// generated before asking for the challenge, then signs the attestation
// (RegistrationMessage), so that no one who sees the challenge can answer
// it with a passkey of their own. Bodies from before (a passkey
// registration with no Credential, the passkey taken from the
// attestation) still decode; package auth says what it accepts.
type AccountRegisterBody struct {
	Scope      string
	Account    string
	Nonce      [16]byte
	Time       int64
	Credential *Credential
	// RegistrationKey (optional, absent when nil) is the client's key
	// that signs a passkey registration's attestation.
	RegistrationKey *PublicKey
	// ConfigSeq (optional, last in the encoding, absent when nil) is the
	// sequence number of the scope config the registration was made
	// under: the account's mode is derived from the scope's configs from
	// that one on (package auth, State.AccountMode), not from the config a
	// node happens to hold when the registration arrives.
	ConfigSeq *uint64
}

// Payload is what a passkey registration's challenge commits to: the
// body's encoding without its Credential (Challenge(AccountRegister,
// b.Payload())).
func (b *AccountRegisterBody) Payload() []byte {
	p := *b
	p.Credential = nil
	return p.Marshal()
}

// RegistrationMessage is what a registration key signs: a domain tag, the
// registration's challenge and the exact navigator.credentials.create()
// response JSON that the record carries.
func RegistrationMessage(challenge, webauthn []byte) []byte {
	var w Writer
	w.String("keymesh/registration/v1")
	w.Var(challenge)
	w.Var(webauthn)
	return w.Bytes()
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *AccountRegisterBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	w.Fixed(b.Nonce[:])
	w.U64(uint64(b.Time))
	if b.Credential == nil {
		w.U8(0)
	} else {
		w.U8(1)
		b.Credential.encode(&w)
	}
	// Added after the first encoding: written only when present, so a
	// body without it keeps its encoding (and its record its id).
	if b.RegistrationKey != nil {
		w.U8(1)
		b.RegistrationKey.Encode(&w)
	}
	if b.ConfigSeq != nil {
		w.U8(2)
		w.U64(*b.ConfigSeq)
	}
	return w.Bytes()
}

// DecodeAccountRegister decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeAccountRegister(p []byte) (*AccountRegisterBody, error) {
	r := NewReader(p)
	b := &AccountRegisterBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	r.Fixed(b.Nonce[:], "nonce")
	b.Time = int64(r.U64("time"))
	if r.Bool("has credential") {
		c := decodeCredential(r)
		b.Credential = &c
	}
	// Optional trailing fields, each a marker byte and its value, in
	// ascending marker order, each at most once (one encoding per value):
	// 1 the registration key, 2 the config seq.
	last := uint8(0)
	for r.Err() == nil && r.more() {
		v := r.U8("optional field")
		if r.Err() != nil {
			break
		}
		if v <= last || v > 2 {
			r.fail("optional field: marker %d after %d (want 1 then 2, each at most once)", v, last)
			break
		}
		last = v
		switch v {
		case 1:
			k := DecodePublicKey(r)
			b.RegistrationKey = &k
		case 2:
			seq := r.U64("config seq")
			b.ConfigSeq = &seq
		}
	}
	checkIDs(r, b.Scope, b.Account)
	if r.Err() == nil && b.Time < 0 {
		r.fail("negative time")
	}
	return b, r.Done()
}

// CredentialAddBody adds a plain-key credential to an account. It is
// authorised by a developer key or one of the account's credentials.
type CredentialAddBody struct {
	Scope      string
	Account    string
	Nonce      [16]byte
	Credential Credential
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *CredentialAddBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	w.Fixed(b.Nonce[:])
	b.Credential.encode(&w)
	return w.Bytes()
}

// DecodeCredentialAdd decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeCredentialAdd(p []byte) (*CredentialAddBody, error) {
	r := NewReader(p)
	b := &CredentialAddBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	r.Fixed(b.Nonce[:], "nonce")
	b.Credential = decodeCredential(r)
	checkIDs(r, b.Scope, b.Account)
	return b, r.Done()
}

// CredentialRevokeBody revokes a credential for good. It is authorised by
// a developer key or one of the account's credentials (itself included).
type CredentialRevokeBody struct {
	Scope        string
	Account      string
	CredentialID []byte
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *CredentialRevokeBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	w.Var(b.CredentialID)
	return w.Bytes()
}

// DecodeCredentialRevoke decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeCredentialRevoke(p []byte) (*CredentialRevokeBody, error) {
	r := NewReader(p)
	b := &CredentialRevokeBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	b.CredentialID = r.Var(MaxCredentialID, "credential id")
	checkIDs(r, b.Scope, b.Account)
	if r.Err() == nil && len(b.CredentialID) == 0 {
		r.fail("empty credential id")
	}
	return b, r.Done()
}

// SessionCreateBody authorises a session key (generated by the client)
// for an account from Issued until Expiry (unix seconds). It is authorised
// by one of the account's credentials: a passkey assertion whose challenge
// commits to this body, or a plain-key signature. Issued lets every node
// check the lifetime against the scope's session limit itself.
type SessionCreateBody struct {
	Scope   string
	Account string
	Key     PublicKey
	Issued  int64
	Expiry  int64
	Nonce   [16]byte
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *SessionCreateBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	b.Key.Encode(&w)
	w.U64(uint64(b.Issued))
	w.U64(uint64(b.Expiry))
	w.Fixed(b.Nonce[:])
	return w.Bytes()
}

// DecodeSessionCreate decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeSessionCreate(p []byte) (*SessionCreateBody, error) {
	r := NewReader(p)
	b := &SessionCreateBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	b.Key = DecodePublicKey(r)
	b.Issued = int64(r.U64("issued"))
	b.Expiry = int64(r.U64("expiry"))
	r.Fixed(b.Nonce[:], "nonce")
	checkIDs(r, b.Scope, b.Account)
	if r.Err() == nil && (b.Issued < 0 || b.Expiry <= b.Issued) {
		r.fail("session must expire after it is issued")
	}
	return b, r.Done()
}

// SessionRevokeBody revokes a session key (by its PublicKey.ID) for good.
// It is authorised by the session key itself, one of the account's
// credentials or a developer key.
type SessionRevokeBody struct {
	Scope   string
	Account string
	Session [32]byte
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *SessionRevokeBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	w.Fixed(b.Session[:])
	return w.Bytes()
}

// DecodeSessionRevoke decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeSessionRevoke(p []byte) (*SessionRevokeBody, error) {
	r := NewReader(p)
	b := &SessionRevokeBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	r.Fixed(b.Session[:], "session")
	checkIDs(r, b.Scope, b.Account)
	return b, r.Done()
}

// AccountModeBody moves an account to another mode: Mode must be its
// scope's current mode (the developer's side: it set the scope's mode) and
// Seq greater than the account's last AccountModeBody (0 at registration).
// While the account has a user's half (user or hybrid mode) it is proven
// by one of the account's credentials (the user's consent); in developer
// mode, by a developer key.
type AccountModeBody struct {
	Scope   string
	Account string
	Seq     uint64
	Mode    Mode
}

// Marshal returns the body's canonical encoding (what its record signs).
func (b *AccountModeBody) Marshal() []byte {
	var w Writer
	w.String(b.Scope)
	w.String(b.Account)
	w.U64(b.Seq)
	w.U8(uint8(b.Mode))
	return w.Bytes()
}

// DecodeAccountMode decodes Marshal's output strictly; errors wrap ErrMalformed.
func DecodeAccountMode(p []byte) (*AccountModeBody, error) {
	r := NewReader(p)
	b := &AccountModeBody{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account")}
	b.Seq = r.U64("seq")
	b.Mode = Mode(r.U8("mode"))
	checkIDs(r, b.Scope, b.Account)
	if r.Err() == nil && (b.Mode < ModeUser || b.Mode > ModeHybrid) {
		r.fail("unknown mode %d", b.Mode)
	}
	if r.Err() == nil && b.Seq == 0 {
		r.fail("seq must be at least 1")
	}
	return b, r.Done()
}

// Approval is one party's approval of one operation: it binds the scope,
// the account, the canonical method name, the operation hash
// (auth.Operation.Hash), a fresh nonce and an expiry (unix seconds).
type Approval struct {
	Scope   string
	Account string
	Method  string
	Hash    [32]byte
	Nonce   [16]byte
	Expiry  int64
}

// Marshal returns the approval's canonical encoding.
func (a *Approval) Marshal() []byte {
	var w Writer
	w.String(a.Scope)
	w.String(a.Account)
	w.String(a.Method)
	w.Fixed(a.Hash[:])
	w.Fixed(a.Nonce[:])
	w.U64(uint64(a.Expiry))
	return w.Bytes()
}

// DecodeApproval decodes Marshal's output strictly.
func DecodeApproval(p []byte) (*Approval, error) {
	r := NewReader(p)
	a := &Approval{Scope: r.String(MaxScopeID, "scope"), Account: r.String(MaxAccountID, "account"), Method: r.String(MaxMethod, "method")}
	r.Fixed(a.Hash[:], "hash")
	r.Fixed(a.Nonce[:], "nonce")
	a.Expiry = int64(r.U64("expiry"))
	if r.Err() == nil {
		if err := CheckScopeID(a.Scope); err != nil {
			r.fail("%v", err)
		} else if a.Account != "" {
			if err := CheckAccountID(a.Account); err != nil {
				r.fail("%v", err)
			}
		}
		if a.Method == "" {
			r.fail("empty method")
		}
		if a.Expiry < 0 {
			r.fail("negative expiry")
		}
	}
	return a, r.Done()
}

// SigningMessage is what a key signs to give this approval: a domain tag
// and the encoding. A passkey's assertion challenge for it is
// SHA-256(SigningMessage).
func (a *Approval) SigningMessage() []byte {
	var w Writer
	w.String("keymesh/approval/v1")
	w.Var(a.Marshal())
	return w.Bytes()
}

// Challenge is the WebAuthn challenge for this approval (per-operation
// passkey mode).
func (a *Approval) Challenge() []byte {
	h := sha256.Sum256(a.SigningMessage())
	return h[:]
}

// DecodeBody decodes the body of a record of kind k, for callers that
// switch on the result's type.
func DecodeBody(k Kind, p []byte) (any, error) {
	switch k {
	case ScopeCreate:
		return DecodeScopeCreate(p)
	case ScopeUpdate:
		return DecodeScopeUpdate(p)
	case AccountRegister:
		return DecodeAccountRegister(p)
	case CredentialAdd:
		return DecodeCredentialAdd(p)
	case CredentialRevoke:
		return DecodeCredentialRevoke(p)
	case SessionCreate:
		return DecodeSessionCreate(p)
	case SessionRevoke:
		return DecodeSessionRevoke(p)
	case AccountMode:
		return DecodeAccountMode(p)
	}
	return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, k)
}

// MarshalBody encodes a body returned by DecodeBody.
func MarshalBody(b any) ([]byte, error) {
	switch b := b.(type) {
	case interface{ Marshal() []byte }:
		return b.Marshal(), nil
	}
	return nil, fmt.Errorf("record: %T is not a record body", b)
}

// Marshal returns the config's canonical encoding.
func (c *ScopeConfig) Marshal() []byte {
	var w Writer
	c.encode(&w)
	return w.Bytes()
}

// DecodeScopeConfig decodes Marshal's output strictly and checks it.
func DecodeScopeConfig(p []byte) (ScopeConfig, error) {
	r := NewReader(p)
	c := decodeScopeConfig(r)
	return c, r.Done()
}

// Marshal returns the credential's canonical encoding.
func (c *Credential) Marshal() []byte {
	var w Writer
	c.encode(&w)
	return w.Bytes()
}

// DecodeCredential decodes Marshal's output strictly.
func DecodeCredential(p []byte) (Credential, error) {
	r := NewReader(p)
	c := decodeCredential(r)
	return c, r.Done()
}
