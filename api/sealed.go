package api

// Error codes of sealed requests (docs/enclave.md, package envelope): a
// request the node could not open is answered in plaintext with one of
// these, each naming one reason, and changes nothing on the node.
const (
	CodeSealedMalformed  = -32050 // the envelope does not parse
	CodeSealedUnknownKey = -32051 // sealed to a key this node does not hold
	CodeSealedHeader     = -32052 // the authenticated header (AAD: method, scope, time, nonce) was altered
	CodeSealedCiphertext = -32053 // the ciphertext was altered
	CodeSealedExpired    = -32054 // the timestamp is outside the node's window
	CodeSealedReplay     = -32055 // the request was seen before
	CodeSealedBinding    = -32056 // sealed for another JSON-RPC method or scope
	CodePlaintextRefused = -32057 // an unsealed request to a node that accepts only sealed ones
)

// MethodAttestation returns the node's attestation document
// (attest.Document: {"keys": base64, "quote": base64}); also served at
// GET /attestation.
const MethodAttestation = "keymesh_attestation"
