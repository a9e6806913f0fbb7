package record

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Version is the first byte of every encoded Record.
const Version = 1

// Kind says what a record changes.
type Kind uint8

const (
	ScopeCreate      Kind = 1 // a new scope, signed by one of its developer keys
	ScopeUpdate      Kind = 2 // a scope's new config, signed by a current developer key
	AccountRegister  Kind = 3 // a new account: passkey attestation, or a developer signature (delegated)
	CredentialAdd    Kind = 4 // another key credential for an account
	CredentialRevoke Kind = 5 // a credential is revoked, for good
	SessionCreate    Kind = 6 // a session key, authorised by one of the account's credentials
	SessionRevoke    Kind = 7 // a session key is revoked, for good
	AccountMode      Kind = 8 // an account moves to its scope's current mode, with its holder's consent
)

var kindNames = map[Kind]string{
	ScopeCreate: "scope.create", ScopeUpdate: "scope.update", AccountRegister: "account.register",
	CredentialAdd: "credential.add", CredentialRevoke: "credential.revoke",
	SessionCreate: "session.create", SessionRevoke: "session.revoke",
	AccountMode: "account.mode",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds is a set of record kinds, each with its name: the kinds one
// service owns (api/services.go: one byte each, one owner per kind). The
// kinds above are auth's (AuthKinds), and Unmarshal decodes only those;
// another service declares its own Kinds and decodes its records with
// Kinds.Unmarshal, so that no record of a kind it does not own decodes as
// one of its own. The node dispatches each record to the service that
// owns its kind (PeekKind) and refuses the others.
type Kinds map[Kind]string

// AuthKinds returns the kinds above, which package auth owns, in order.
func AuthKinds() []Kind {
	return slices.Sorted(maps.Keys(kindNames))
}

// PeekKind returns the kind of an encoded record (its second byte) without
// decoding the rest: for dispatching a record to the service that owns
// its kind, which then decodes it strictly. An empty record, another
// version and kind 0 are errors wrapping ErrMalformed.
func PeekKind(b []byte) (Kind, error) {
	switch {
	case len(b) < 2:
		return 0, fmt.Errorf("%w: %d bytes, not a record", ErrMalformed, len(b))
	case b[0] != Version:
		return 0, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], Version)
	case b[1] == 0:
		return 0, fmt.Errorf("%w: kind 0", ErrMalformed)
	}
	return Kind(b[1]), nil
}

// AuthKind says how a record is authorised.
type AuthKind uint8

const (
	// AuthSignature: Sig is Signer's signature over SigningMessage.
	AuthSignature AuthKind = 1
	// AuthPasskeyCreate: WebAuthn is the JSON of the PublicKeyCredential
	// returned by navigator.credentials.create(), whose challenge is
	// Challenge(kind, body) (W3C WebAuthn Level 3, §7.1).
	AuthPasskeyCreate AuthKind = 2
	// AuthPasskeyGet: WebAuthn is the JSON of the PublicKeyCredential
	// returned by navigator.credentials.get() with credential CredentialID,
	// whose challenge is Challenge(kind, body) (§7.2).
	AuthPasskeyGet AuthKind = 3
	// AuthSignatures: Sigs holds 2 to MaxDevKeys signatures over
	// SigningMessage by distinct keys, in ascending order of their
	// encodings (one encoding per set): a scope.update signed by a quorum
	// of developer keys.
	AuthSignatures AuthKind = 4
	// AuthPasskeyCreateKeyed: as AuthPasskeyCreate, whose challenge is
	// Challenge(kind, payload) for the body's AccountRegisterBody.Payload,
	// and Sig is the body's RegistrationKey's signature over
	// RegistrationMessage(challenge, WebAuthn).
	AuthPasskeyCreateKeyed AuthKind = 5
)

// Signature is one key's signature, in an AuthSignatures record.
type Signature struct {
	Signer PublicKey
	Sig    []byte
}

// Auth is the proof that the record's author may make it.
type Auth struct {
	Kind     AuthKind
	Signer   PublicKey   // AuthSignature
	Sig      []byte      // AuthSignature, AuthPasskeyCreateKeyed
	Sigs     []Signature // AuthSignatures
	WebAuthn []byte      // AuthPasskeyCreate, AuthPasskeyGet, AuthPasskeyCreateKeyed
}

// MaxWebAuthn bounds the WebAuthn JSON carried by a record or approval.
const MaxWebAuthn = 16 << 10

// Record is one signed state change: Body is the canonical encoding of the
// kind's body type (ScopeCreateBody…), Auth proves who made it.
type Record struct {
	Kind Kind
	Body []byte
	Auth Auth
}

// ID identifies a record by what it says (kind and body), not by its
// proof, so the same change signed twice (ECDSA is randomised), or proven
// twice, is the same record: everything a node applies is in the body, and
// a second proof of an applied body changes nothing.
func (r *Record) ID() [32]byte { return sha256.Sum256(SigningMessage(r.Kind, r.Body)) }

// SigningMessage is what a record's author signs: a domain tag, the kind
// and the body.
func SigningMessage(k Kind, body []byte) []byte {
	var w Writer
	w.String("keymesh/record/v1")
	w.U8(uint8(k))
	w.Var(body)
	return w.Bytes()
}

// Challenge is the WebAuthn challenge that commits to a record: SHA-256
// of its signing message.
func Challenge(k Kind, body []byte) []byte {
	h := sha256.Sum256(SigningMessage(k, body))
	return h[:]
}

// Marshal returns the record's canonical encoding:
// version ‖ kind ‖ body ‖ auth kind ‖ (signer ‖ sig | webauthn).
func (r *Record) Marshal() []byte {
	var w Writer
	w.U8(Version)
	w.U8(uint8(r.Kind))
	w.Var(r.Body)
	w.U8(uint8(r.Auth.Kind))
	switch r.Auth.Kind {
	case AuthSignature:
		r.Auth.Signer.Encode(&w)
		w.Var(r.Auth.Sig)
	case AuthSignatures:
		w.U32(uint32(len(r.Auth.Sigs)))
		for _, s := range r.Auth.Sigs {
			s.Signer.Encode(&w)
			w.Var(s.Sig)
		}
	case AuthPasskeyCreateKeyed:
		w.Var(r.Auth.WebAuthn)
		w.Var(r.Auth.Sig)
	default:
		w.Var(r.Auth.WebAuthn)
	}
	return w.Bytes()
}

// Unmarshal decodes a record of one of auth's kinds (AuthKinds) strictly:
// unknown version, kind or auth kind, oversized fields and trailing bytes
// are errors wrapping ErrMalformed. The body itself is decoded by the
// kind's Decode function.
func Unmarshal(b []byte) (*Record, error) { return unmarshal(b, kindNames) }

// Unmarshal decodes a record of one of the kinds in ks as the package
// function Unmarshal does: a record of any other kind is an error wrapping
// ErrMalformed. The body is the owning service's to decode.
func (ks Kinds) Unmarshal(b []byte) (*Record, error) { return unmarshal(b, ks) }

func unmarshal(b []byte, kinds Kinds) (*Record, error) {
	rd := NewReader(b)
	if v := rd.U8("version"); rd.Err() == nil && v != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, Version)
	}
	r := &Record{Kind: Kind(rd.U8("kind"))}
	if _, ok := kinds[r.Kind]; (!ok || r.Kind == 0) && rd.Err() == nil {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, r.Kind)
	}
	r.Body = rd.Var(0, "body")
	r.Auth.Kind = AuthKind(rd.U8("auth kind"))
	switch r.Auth.Kind {
	case AuthSignature:
		r.Auth.Signer = DecodePublicKey(rd)
		r.Auth.Sig = rd.Var(64, "signature")
	case AuthSignatures:
		n := rd.Count(MaxDevKeys, "signatures")
		if rd.Err() == nil && n < 2 {
			return nil, fmt.Errorf("%w: %d signatures: one is an AuthSignature", ErrMalformed, n)
		}
		var prev []byte
		for range n {
			s := Signature{Signer: DecodePublicKey(rd), Sig: rd.Var(64, "signature")}
			if rd.Err() != nil {
				break
			}
			var kw Writer
			s.Signer.Encode(&kw)
			if prev != nil && string(kw.Bytes()) <= string(prev) {
				return nil, fmt.Errorf("%w: signatures not in ascending order of distinct signers", ErrMalformed)
			}
			prev = kw.Bytes()
			r.Auth.Sigs = append(r.Auth.Sigs, s)
		}
	case AuthPasskeyCreate, AuthPasskeyGet:
		r.Auth.WebAuthn = rd.Var(MaxWebAuthn, "webauthn")
	case AuthPasskeyCreateKeyed:
		r.Auth.WebAuthn = rd.Var(MaxWebAuthn, "webauthn")
		r.Auth.Sig = rd.Var(64, "registration signature")
	default:
		if rd.Err() == nil {
			return nil, fmt.Errorf("%w: unknown auth kind %d", ErrMalformed, r.Auth.Kind)
		}
	}
	if err := rd.Done(); err != nil {
		return nil, err
	}
	return r, nil
}

// Sign returns a record of kind k with body, signed by key.
func Sign(k Kind, body []byte, key *PrivateKey) (*Record, error) {
	sig, err := key.Sign(SigningMessage(k, body))
	if err != nil {
		return nil, fmt.Errorf("record: sign: %w", err)
	}
	return &Record{Kind: k, Body: body, Auth: Auth{Kind: AuthSignature, Signer: key.Public(), Sig: sig}}, nil
}

// VerifySignature checks an AuthSignature record's signature, or every
// signature of an AuthSignatures record (not whether its signers may make
// it: that is package auth's chain of authority).
func (r *Record) VerifySignature() error {
	switch r.Auth.Kind {
	case AuthSignature:
		return r.Auth.Signer.Verify(SigningMessage(r.Kind, r.Body), r.Auth.Sig)
	case AuthSignatures:
		if len(r.Auth.Sigs) == 0 {
			return ErrBadSignature
		}
		msg := SigningMessage(r.Kind, r.Body)
		for _, s := range r.Auth.Sigs {
			if err := s.Signer.Verify(msg, s.Sig); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("record: %s is not signed by a key", r.Kind)
}

// Signers returns the keys that sign an AuthSignature or AuthSignatures
// record (nil for a passkey proof).
func (r *Record) Signers() []PublicKey {
	switch r.Auth.Kind {
	case AuthSignature:
		return []PublicKey{r.Auth.Signer}
	case AuthSignatures:
		ks := make([]PublicKey, len(r.Auth.Sigs))
		for i, s := range r.Auth.Sigs {
			ks[i] = s.Signer
		}
		return ks
	}
	return nil
}

// SignQuorum returns a record of kind k with body, signed by every one of
// keys (at least one; duplicates are an error): an AuthSignature record
// for one key, else an AuthSignatures record in canonical order.
func SignQuorum(k Kind, body []byte, keys ...*PrivateKey) (*Record, error) {
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("record: sign: no key")
	case 1:
		return Sign(k, body, keys[0])
	}
	if len(keys) > MaxDevKeys {
		return nil, fmt.Errorf("record: sign: at most %d keys", MaxDevKeys)
	}
	msg := SigningMessage(k, body)
	sigs := make([]Signature, 0, len(keys))
	for _, key := range keys {
		sig, err := key.Sign(msg)
		if err != nil {
			return nil, fmt.Errorf("record: sign: %w", err)
		}
		sigs = append(sigs, Signature{Signer: key.Public(), Sig: sig})
	}
	enc := func(p PublicKey) string { var w Writer; p.Encode(&w); return string(w.Bytes()) }
	slices.SortFunc(sigs, func(a, b Signature) int { return strings.Compare(enc(a.Signer), enc(b.Signer)) })
	for i := 1; i < len(sigs); i++ {
		if sigs[i].Signer.Equal(sigs[i-1].Signer) {
			return nil, fmt.Errorf("record: sign: the same key twice")
		}
	}
	return &Record{Kind: k, Body: body, Auth: Auth{Kind: AuthSignatures, Sigs: sigs}}, nil
}
