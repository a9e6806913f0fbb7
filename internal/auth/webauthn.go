package auth

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/keymesh/keymesh/internal/record"
)

// WebAuthn verification (W3C Web Authentication Level 3, §7.1 "Registering
// a New Credential" and §7.2 "Verifying an Authentication Assertion"),
// done with go-webauthn's protocol package against a challenge that every
// node derives itself from the record or approval it authorises, so no
// node has to trust another's challenge bookkeeping.
//
// User verification is required: a passkey approves an account's
// operations on its own.

var credParams = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// verifyAttestation checks a navigator.credentials.create() response whose
// challenge must be challenge, for cfg's relying party and origins, and
// returns the new passkey credential.
func verifyAttestation(cfg *record.ScopeConfig, resp []byte, challenge []byte) (record.Credential, error) {
	pcc, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		return record.Credential{}, fmt.Errorf("passkey attestation: %s", webauthnReason(err))
	}
	_, err = pcc.Verify(base64.RawURLEncoding.EncodeToString(challenge), cfg.RPID, cfg.Origins, nil, nil,
		protocol.TopOriginImplicitVerificationMode, false, true, true, nil, credParams,
		protocol.AttestationPolicy{}, protocol.SignaturePolicy{})
	if err != nil {
		return record.Credential{}, fmt.Errorf("passkey attestation: %s", webauthnReason(err))
	}
	att := pcc.Response.AttestationObject.AuthData.AttData
	if len(att.CredentialID) == 0 || len(att.CredentialID) > record.MaxCredentialID || len(att.CredentialPublicKey) > record.MaxCOSEKey {
		return record.Credential{}, fmt.Errorf("passkey attestation: bad credential id or key size")
	}
	if _, err := webauthncose.ParsePublicKey(att.CredentialPublicKey); err != nil {
		return record.Credential{}, fmt.Errorf("passkey attestation: unsupported public key")
	}
	return record.Credential{ID: bytes.Clone(att.CredentialID), Kind: record.CredPasskey, PublicKey: bytes.Clone(att.CredentialPublicKey)}, nil
}

// assertionCredentialID returns the credential id a
// navigator.credentials.get() response claims, to look its key up.
func assertionCredentialID(resp []byte) ([]byte, *protocol.ParsedCredentialAssertionData, error) {
	par, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey assertion: %s", webauthnReason(err))
	}
	return par.RawID, par, nil
}

// verifyAssertion checks a parsed navigator.credentials.get() response
// against the credential's COSE key and the expected challenge.
func verifyAssertion(cfg *record.ScopeConfig, par *protocol.ParsedCredentialAssertionData, coseKey, challenge []byte) error {
	err := par.Verify(base64.RawURLEncoding.EncodeToString(challenge), cfg.RPID, "", cfg.Origins, nil, nil,
		protocol.TopOriginImplicitVerificationMode, false, true, true, coseKey, protocol.SignaturePolicy{})
	if err != nil {
		return fmt.Errorf("passkey assertion: %s", webauthnReason(err))
	}
	return nil
}

// webauthnReason is go-webauthn's error without its Info (which can echo
// expected values), for messages that reach clients.
func webauthnReason(err error) string {
	if pe, ok := err.(*protocol.Error); ok {
		if pe.Details != "" {
			return pe.Details
		}
		return pe.Type
	}
	return "malformed"
}
