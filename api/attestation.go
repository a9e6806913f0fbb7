package api

// AttestationDocument is a node's attestation, as GET /attestation and
// MethodAttestation return it: JSON {"keys": base64, "fresh": base64,
// "quote": base64}. Keys is the canonical encoding of the public keys the
// node attests (request keys and identity key), Fresh that of its validity
// window and the client's challenge, and Quote the enclave quote whose
// report data binds both. Nothing in it vouches for itself: a client
// verifies it against its own trust roots (internal/attest's Verify) before
// it seals anything to the keys.
type AttestationDocument struct {
	Keys  []byte `json:"keys"`  // attested keys, canonical encoding
	Fresh []byte `json:"fresh"` // freshness (issued, expires, challenge), canonical encoding
	Quote []byte `json:"quote"` // enclave quote, canonical encoding
}
