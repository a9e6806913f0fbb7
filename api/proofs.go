package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// ProofsHeader is the HTTP header that carries a request's approval proofs
// (session-key signatures, passkey assertions, developer signatures), so
// that JSON-RPC params keep their standard EIP-1193 shapes. In a sealed
// request the same value travels inside the envelope (SealedCall.Auth,
// CompatFieldAuth) instead.
const ProofsHeader = "X-Keymesh-Auth"

// Proofs is the value of the ProofsHeader: base64url (no padding) of a
// JSON object
//
//	{"approvals": [Proof, …]}
//
// where each Proof holds one approval (base64url of the canonical encoding
// of an approval record: internal/record's Approval, which names the
// scope, the account, the method, the operation hash (OperationHash), an
// expiry and a fresh nonce) and exactly one way of signing it:
//
//	{"approval": "…", "session": "<session.create record>", "sig": "…"}  session key
//	{"approval": "…", "developer": "p256:…", "sig": "…"}                  developer key (DOA)
//	{"approval": "…", "key": "ed25519:…", "sig": "…"}                     the user's plain-key credential
//	{"approval": "…", "passkey": {PublicKeyCredential JSON}}              per-operation passkey
//
// Signatures are over the approval's signing message; a passkey assertion's
// challenge is the approval's challenge (both defined in internal/record).
// A header may hold approvals for several operations: a node uses those
// bound to the operation's hash. Nodes check every field (internal/auth);
// this type is only the wire shape.
type Proofs struct {
	Approvals []Proof `json:"approvals"`
}

// Proof is one approval and its signature (see Proofs).
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
	MaxProofsLen = 64 << 10 // header value, bytes
	MaxApprovals = 16       // approvals in one header
)

// MaxApprovalTTL is the longest an approval may be valid for: nodes refuse
// an approval whose expiry is further ahead.
const MaxApprovalTTL = 10 * time.Minute

// Encode returns the header value.
func (p *Proofs) Encode() string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseProofs decodes a header value strictly (unknown members, trailing
// data and oversized values are errors). It checks the shape only: what
// each approval and signature say is the node's to verify.
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
