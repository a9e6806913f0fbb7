// Package audit is a node's tamper-evident audit log (issue 16, "Audit
// log"): every state change the node applies and every signature or key
// generation it takes part in is appended to a per-node hash chain in the
// node's store, and the node signs the chain's head with its identity key
// and sends it to its peers, which keep the heads they receive. A node that
// rewrites or truncates its own history after a head left it is caught:
// its chain no longer leads to the head its peers hold (Verify).
//
// # What an entry holds, and why none of it is secret
//
// An Entry records what happened (Kind: an auth record applied, a wallet
// signature or key generation as gateway or co-signer), for whom (Scope,
// Account), how (Method, OpHash, Request, Keys, Signers) and with what
// result (Outcome and a JSON-RPC Code), at Time. Every field is either an
// identifier the protocol already makes public to every node, or a
// digest that is already public in the protocol:
//
//   - Scope and Account are the ids under which the replicated state
//     holds the scope and the account on every node (package record);
//     the log adds no data about the account that the state lacks.
//   - Method is a JSON-RPC method name or a record kind.
//   - OpHash is auth.Operation.Hash (api.OperationHash), the value every
//     approval signs and every co-signer receives, or a record's id
//     (record.Record.ID), the hash of a record every node stores. It is a
//     hash of the operation (address and digest to sign), not of a
//     message's plaintext: the message, typed data or transaction
//     itself is never logged.
//   - Request is the id the gateway chose for a client request (random).
//   - Keys are ids of public keys (KeyID: a prefix of record.PublicKey.ID
//     for developer, plain and session keys; for a passkey, of its
//     credential id, a random value its authenticator chose). Public keys
//     and credential ids are stored in the replicated state; no signature,
//     assertion or attestation is logged.
//   - Signers are node ids.
//   - Outcome and Code say ok, refused or failed, with the JSON-RPC code of
//     the refusal; error messages are not logged (they may quote input).
//
// So the log never holds a key share, a session or passkey secret, a
// message or transaction plaintext, or a hash of personal data (a UID
// input, say): a hash of low-entropy personal data could be reversed by
// guessing, so no such value may ever become a field here. A test
// (TestNoSecretInLog in package node) runs real key generation and signing
// on a real cluster and searches the stored log for the secrets it knows.
//
// # Canonical encoding (version 1)
//
// Entries use package record's canonical binary encoding (big-endian fixed
// integers, u32 length-prefixed strings, u32-counted lists):
//
//	u8 version=1 ‖ u64 seq ‖ prev(32) ‖ u64 time (Unix nanoseconds, UTC) ‖
//	kind ‖ scope ‖ account ‖ method ‖ ophash(32) ‖ request(16) ‖
//	u32 #keys ‖ key… (strings, strictly ascending) ‖
//	u32 #signers ‖ u32 signer… (strictly ascending, each ≤ 65535) ‖
//	outcome ("ok", "refused" or "failed") ‖ u32 code (int32, two's complement)
//
// Decoding is strict (limits, UTF-8, order, known outcomes, trailing bytes),
// so each entry has exactly one encoding. An entry's hash is
//
//	SHA-256( u32 len ‖ "keymesh/audit/entry/v1" ‖ encoding )
//
// and entry seq+1 holds entry seq's hash as prev; entry 1's prev is 32 zero
// bytes. A signed head (Head) is Ed25519 over
//
//	u32 len ‖ "keymesh/audit/head/v1" ‖ cluster ‖ u32 node ‖ u64 seq ‖ hash(32) ‖ u64 time
//
// with the node's identity key (config.Identity, the key its peers pin).
// The domain tags keep these hashes and signatures apart from every other
// hash and signature keymesh makes with the same key.
//
// # Store layout
//
//	audit/chain       %016x seq → entry encoding
//	audit/meta        "head" → u64 seq ‖ hash(32) (the chain's end, for Append)
//	                  "signed" → this node's latest SignedHead
//	audit/peer-heads  %05d node "/" %016x seq → SignedHead a peer sent
//
// Append reads the end and writes the next entry in one store transaction
// (AppendTx joins the caller's: an auth record and its entry commit
// together), so concurrent appends, also from several processes sharing one
// PostgreSQL database, form one chain. Peers keep, per node, the 8 latest
// heads and the oldest head in each power-of-two distance band below the
// latest (HeadStore), so storage is bounded (at most 8+64 per node) while
// old history stays pinned at exponentially spaced points.
//
// # What it does not catch
//
// Entries appended after the last head a peer received are only as good as
// the node's own word until the next head leaves (heads go out every
// minute, on demand, and at a clean shutdown: Publisher.Final). A node
// that never sends heads is noticed by its absence (Verify reports no
// heads). Peers serve the heads they hold over HTTP (remote.go), so a
// verifier needs no access to their stores. The heads do not prove that
// every event was logged: a node that skips appending is not caught by the
// chain, only by comparison with its peers' logs of the same sessions
// (CrossCheck: the members of a session each log it under one request id).
package audit
