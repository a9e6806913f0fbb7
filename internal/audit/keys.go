package audit

import (
	"encoding/base64"
	"encoding/json"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// ApprovalKeys returns the ids (KeyID) of the keys whose approvals in the
// proofs header value bind (method, hash): developer ("dev"), plain-key
// ("key"), session ("session", the session.create record's id) and
// passkey ("passkey", of the credential id). It reads the approvals' shape
// only; call it for an operation Authorize accepted. Malformed parts are
// skipped.
func ApprovalKeys(proofs, method string, hash [32]byte) []string {
	ps, err := api.ParseProofs(proofs)
	if err != nil {
		return nil
	}
	var ids []string
	for _, p := range ps.Approvals {
		raw, err := base64.RawURLEncoding.DecodeString(p.Approval)
		if err != nil {
			continue
		}
		a, err := record.DecodeApproval(raw)
		if err != nil || a.Method != method || a.Hash != hash {
			continue
		}
		switch {
		case p.Developer != "":
			if k, err := record.ParsePublicKey(p.Developer); err == nil {
				id := k.ID()
				ids = append(ids, KeyID("dev", id[:]))
			}
		case p.Key != "":
			if k, err := record.ParsePublicKey(p.Key); err == nil {
				id := k.ID()
				ids = append(ids, KeyID("key", id[:]))
			}
		case p.Session != "":
			if b, err := base64.RawURLEncoding.DecodeString(p.Session); err == nil {
				if r, err := record.Unmarshal(b); err == nil {
					id := r.ID()
					ids = append(ids, KeyID("session", id[:]))
				}
			}
		case len(p.Passkey) > 0:
			if id := credentialID(p.Passkey); id != nil {
				ids = append(ids, KeyID("passkey", id))
			}
		}
		if len(ids) == maxKeys {
			break
		}
	}
	return ids
}

// credentialID returns the rawId of a PublicKeyCredential's JSON, or nil.
func credentialID(webauthn []byte) []byte {
	var c struct {
		RawID string `json:"rawId"`
	}
	if json.Unmarshal(webauthn, &c) != nil {
		return nil
	}
	id, err := base64.RawURLEncoding.DecodeString(c.RawID)
	if err != nil || len(id) == 0 {
		return nil
	}
	return id
}

// RecordEntry returns the entry for an auth record (record.Record's
// encoding) this node applied: its kind as Method, its scope and account,
// its id as OpHash and the ids of the keys or passkey that prove it. ok is
// false if rec does not decode (Apply refused it then).
func RecordEntry(rec []byte) (e Entry, ok bool) {
	r, err := record.Unmarshal(rec)
	if err != nil {
		return Entry{}, false
	}
	e = Entry{Kind: KindRecord, Method: r.Kind.String(), OpHash: r.ID(), Outcome: OutcomeOK}
	if body, err := record.DecodeBody(r.Kind, r.Body); err == nil {
		switch b := body.(type) {
		case *record.ScopeCreateBody:
			e.Scope = b.ScopeID()
		case *record.ScopeUpdateBody:
			e.Scope = b.Scope
		case *record.AccountRegisterBody:
			e.Scope, e.Account = b.Scope, b.Account
		case *record.CredentialAddBody:
			e.Scope, e.Account = b.Scope, b.Account
		case *record.CredentialRevokeBody:
			e.Scope, e.Account = b.Scope, b.Account
		case *record.SessionCreateBody:
			e.Scope, e.Account = b.Scope, b.Account
		case *record.SessionRevokeBody:
			e.Scope, e.Account = b.Scope, b.Account
		case *record.AccountModeBody:
			e.Scope, e.Account = b.Scope, b.Account
		}
	}
	for _, k := range r.Signers() {
		id := k.ID()
		e.Keys = append(e.Keys, KeyID("key", id[:]))
	}
	if len(r.Auth.WebAuthn) > 0 {
		if id := credentialID(r.Auth.WebAuthn); id != nil {
			e.Keys = append(e.Keys, KeyID("passkey", id))
		}
	}
	if len(e.Keys) > maxKeys {
		e.Keys = e.Keys[:maxKeys]
	}
	return e, true
}
