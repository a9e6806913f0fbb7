package auth

// Operation is one request that needs approval: what every node checks with
// Service.Authorize before acting on it (before its first protocol message,
// for a signer).
type Operation struct {
	// Scope is the scope (app) id the account belongs to.
	Scope string
	// Account is the account id within Scope. It is empty only for methods
	// that act on whichever account the proofs authenticate (eth_accounts).
	Account string
	// Method is the canonical JSON-RPC method name (keymesh_… or the EIP-1193
	// name), never an alias.
	Method string
	// Hash commits to exactly what the operation does (for signing: the
	// account's address and the digest to be signed, see
	// api.OperationHash). Every node computes it itself from the request
	// parameters; it is never taken from a peer.
	Hash [32]byte
	// Request is the id the receiving node (the gateway) chose for this client
	// request. A retry of the same request with another set of signers keeps
	// it; anything else is a new request.
	Request [16]byte
}

// Principal is who the proofs of an authorised operation speak for.
type Principal struct {
	Scope   string
	Account string
}
