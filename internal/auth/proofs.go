package auth

import (
	"encoding/base64"
	"fmt"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// The X-Keymesh-Auth header (api.ProofsHeader) holds Proofs; the wire
// format, its limits and its strict decoder are package api's (one
// definition for node and SDK). Authorize checks what they say.

// Proofs is the header's value (api.Proofs).
type Proofs = api.Proofs

// Proof is one approval and its signature (api.Proof).
type Proof = api.Proof

// Limits of the proofs header (api.MaxProofsLen, api.MaxApprovals).
const (
	MaxProofsLen = api.MaxProofsLen
	MaxApprovals = api.MaxApprovals
)

// ParseProofs is api.ParseProofs.
func ParseProofs(s string) (*Proofs, error) { return api.ParseProofs(s) }

// parsed is a Proof with its fields decoded.
type parsed struct {
	approval  *record.Approval
	session   *record.Record
	developer *record.PublicKey
	key       *record.PublicKey
	sig       []byte
	passkey   []byte
}

// parseProof decodes the fields of p.
func parseProof(p *Proof) (*parsed, error) {
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
