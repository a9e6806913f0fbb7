// Package wallet is keymesh's threshold wallet service: accounts whose
// secp256k1 key is made by DKLs23 distributed key generation across all n
// nodes of the cluster, and Ethereum signing by any t of them, with EIP-1193
// method names (personal_sign, eth_signTypedData_v4, eth_signTransaction) so
// that viem and ethers use a node as their provider. No node ever holds the
// key.
//
// The node a client talks to (the gateway) orchestrates: for account creation
// it invites every peer to a key generation with a fresh session id; for
// signing it picks t live signers (itself and t−1 reachable peers) and
// forwards the client's params, its approval proofs and the request id.
// Every participant recomputes the operation (the digest to sign and
// api.OperationHash) from the forwarded params and asks auth (Authorizer) itself
// before it sends its first protocol message, so a gateway cannot make the
// others sign anything the account's owner did not approve. Before inviting
// its co-signers, the gateway has the approval's nonces recorded by n−t+1 of
// the key's holders (the signers, and on n ≥ 2t others asked with
// auth.KindReserve; reserve.go), so that an approval replayed to other
// gateways signs at most once. A sealed request
// acts only in the scope its envelope is bound to (httpapi.SealedScope), and
// keymesh_signDigest (a raw digest) only for scopes whose config allows it
// (Options.RawDigest).
//
// Share records are sealed at rest (Sealer, the enclave backend) under
// enclave.LabelShare(address); ownership (scope, account) → addresses is kept
// on every node. Signing sessions use a fresh 32-byte nonce each: DKLs23's OT
// pads must never be used twice (see package sign). A co-signer does not rely
// on the gateway for that: every party mixes its own randomness into the
// session id (round.Fresh), and the node refuses a session id it ran before
// (node.RunSession's durable record).
//
// A peer caught cheating in a multiplication (sign.Cheaters) is refused on
// the live share every session of the key reads (dkls23.Share.Refuse: open
// sessions stop using the OT correlation with it at once), and the share
// record is written again with every refusal, under a per-wallet lock and in
// one store transaction that merges the refusals already stored, so none is
// lost (Service.refuse).
package wallet
