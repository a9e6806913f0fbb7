package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/keymesh/keymesh/internal/record"
)

// The X-Keymesh-Auth header (httpapi.ProofsHeader) holds Proofs:
// base64url (no padding) of a JSON object
//
//	{"approvals": [Proof, …]}
//
// where each Proof holds one approval (base64url of record.Approval's
// canonical encoding) and exactly one way of signing it:
//
//	{"approval": "…", "session": "<session.create record>", "sig": "…"}  session key
//	{"approval": "…", "developer": "p256:…", "sig": "…"}                  developer key (DOA)
//	{"approval": "…", "key": "ed25519:…", "sig": "…"}                     the user's plain-key credential
//	{"approval": "…", "passkey": {PublicKeyCredential JSON}}              per-operation passkey
//
// Signatures are over record.Approval.SigningMessage; a passkey
// assertion's challenge is record.Approval.Challenge. A batch may hold
// approvals for several operations: Authorize uses those bound to the
// operation's hash.
type Proofs struct {
	Approvals []Proof `json:"approvals"`
}

// Proof is one approval and its signature.
type Proof struct {
	Approval  string          `json:"approval"`
	Session   string          `json:"session,omitempty"`
	Developer string          `json:"developer,omitempty"`
	Key       string          `json:"key,omitempty"`
	Sig       string          `json:"sig,omitempty"`
	Passkey   json.RawMessage `json:"passkey,omitempty"`
}

// Limits of the proofs header.
const (
	MaxProofsLen = 64 << 10
	MaxApprovals = 16
)

// Encode returns the header value.
func (p *Proofs) Encode() string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseProofs decodes a header value strictly (unknown members, trailing
// data and oversized values are errors).
func ParseProofs(s string) (*Proofs, error) {
	if len(s) > MaxProofsLen {
		return nil, fmt.Errorf("proofs header longer than %d bytes", MaxProofsLen)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("proofs header is not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p Proofs
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("proofs header: bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("proofs header: trailing data")
	}
	if len(p.Approvals) == 0 || len(p.Approvals) > MaxApprovals {
		return nil, fmt.Errorf("proofs header: 1 to %d approvals", MaxApprovals)
	}
	return &p, nil
}

// parsed is a Proof with its fields decoded.
type parsed struct {
	approval  *record.Approval
	session   *record.Record
	developer *record.PublicKey
	key       *record.PublicKey
	sig       []byte
	passkey   []byte
}

func (p *Proof) parse() (*parsed, error) {
	ab, err := base64.RawURLEncoding.DecodeString(p.Approval)
	if err != nil {
		return nil, fmt.Errorf("approval is not base64url")
	}
	out := &parsed{}
	if out.approval, err = record.DecodeApproval(ab); err != nil {
		return nil, fmt.Errorf("approval: %v", err)
	}
	n := 0
	if p.Session != "" {
		n++
		b, err := base64.RawURLEncoding.DecodeString(p.Session)
		if err != nil {
			return nil, fmt.Errorf("session record is not base64url")
		}
		if out.session, err = record.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("session record: %v", err)
		}
		if out.session.Kind != record.SessionCreate {
			return nil, fmt.Errorf("session record is a %s", out.session.Kind)
		}
	}
	for _, k := range []struct {
		s   string
		dst **record.PublicKey
	}{{p.Developer, &out.developer}, {p.Key, &out.key}} {
		if k.s == "" {
			continue
		}
		n++
		pk, err := record.ParsePublicKey(k.s)
		if err != nil {
			return nil, err
		}
		*k.dst = &pk
	}
	if len(p.Passkey) > 0 {
		n++
		if len(p.Passkey) > record.MaxWebAuthn {
			return nil, fmt.Errorf("passkey assertion too large")
		}
		out.passkey = p.Passkey
		if p.Sig != "" {
			return nil, fmt.Errorf("a passkey approval has no sig member")
		}
	} else if out.sig, err = base64.RawURLEncoding.DecodeString(p.Sig); err != nil || len(out.sig) == 0 || len(out.sig) > 64 {
		return nil, fmt.Errorf("sig must be a base64url signature")
	}
	if n != 1 {
		return nil, fmt.Errorf("each approval needs exactly one of session, developer, key, passkey")
	}
	return out, nil
}
