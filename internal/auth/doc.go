// Package auth decides who may do what on a keymesh node: scopes (apps)
// created by developers, accounts registered with passkeys or by the
// developer (delegated registration, "developer-owned auth"), and the
// approval of each operation by the user, the developer or both,
// according to the scope's mode (user, developer, hybrid).
//
// It implements DESIGN.md's "Replication" and "Authorization on the hot
// path": every state change is a signed record (package record) that each
// node verifies itself (Applier, the replica.Applier of package replica),
// and every node that acts on an operation calls Service.Authorize itself
// with the proofs the client sent (the X-Keymesh-Auth header, see Proofs),
// so the node a client talks to can forge neither state nor approvals.
//
// # Records and their chain of authority
//
//   - scope.create: signed by one of the scope's own developer keys; the
//     scope id is derived from the signed body.
//   - scope.update: signed by developer keys of the config it replaces,
//     with a higher sequence number; a change of the developer keys or of
//     their quorum is signed by a quorum of them (ScopeConfig.Quorum: m of
//     k, a majority by default; record.AuthSignatures). Every update that
//     an earlier config authorizes is stored; the scope's config is the end
//     of the chain that steps, from the creation config, to the lowest
//     higher seq the current config authorizes (ties: lowest id), so it is
//     the same whatever order updates arrive in.
//   - account.register: a WebAuthn attestation (W3C Web Authentication
//     Level 3, §7.1) whose challenge is SHA-256 of the signing message of
//     the body's Payload, so any node checks it against the record alone;
//     the body names the passkey and the attestation must be for it, and a
//     client registration key in the payload signs the attestation; or a
//     developer signature over the canonical payload (scope, user id,
//     nonce, time) for delegated registration. A passkey self-registration
//     takes the account id of its registration key (record.DerivedAccountID)
//     and needs a scope that is, or was, in user or hybrid mode; a delegated
//     one takes any other id. Of several valid registrations of one id the
//     lowest record id is the account's (State.Live). A registration that
//     names its scope config seq gets that config's mode on the scope's
//     update chain, in any order (State.AccountMode); a passkey
//     self-registration keeps the user's half.
//   - credential.add: one of the account's credentials, or a developer key
//     (stored in any mode, approving only while the account is in developer
//     mode); a developer key is never a
//     user's credential. A credential approves only while the credential
//     that added it does (State.Live): one added by a credential that is
//     revoked, before or after, is dead with it.
//   - account.mode: moves an account to its scope's current mode, proven
//     by one of its credentials (the user's consent) while it is in user or
//     hybrid mode, by a developer key in developer mode; its sequence
//     number only grows.
//   - credential.revoke: any key that was ever a developer key of the
//     scope, or any credential ever registered to the account, revoked
//     since or not: revoking only removes power. Revocations are final and
//     win whatever order records arrive in (a tombstone is kept even for a
//     credential not yet seen); mutual revocations revoke both.
//   - session.create: one of the account's credentials (a passkey
//     assertion, §7.2, whose challenge commits to the session key, its
//     issue time and expiry). The session approves only while that
//     credential is live, it is not revoked, and it is within the scope's
//     session lifetime (checked on submission and by Authorize).
//   - session.revoke: the session key itself, or as credential.revoke.
//
// A record that names a scope, account, credential or config not applied
// yet is refused with ErrMissing, which the replica keeps and retries.
// docs/auth.md ("Convergence") lists what is not order-independent yet.
//
// docs/auth.md says what a developer can and cannot do in each mode.
//
// Apply is idempotent (a record is identified by its kind and body, and a
// second proof of an applied body is replica.ErrDuplicate: dropped), does
// every check before its first write, and does not read the clock, so a
// node catching up accepts exactly what the others accepted. Freshness
// (a delegated registration's timestamp, challenge expiry) is checked
// where records enter: the JSON-RPC methods.
//
// # Approvals
//
// An approval (record.Approval) binds scope, account, method, operation
// hash, a nonce and an expiry (at most MaxApprovalTTL ahead). It is signed
// by a session key (with the session.create record attached, so a node
// that has not stored the session yet can still verify it), by a passkey
// (per-operation mode: the assertion's challenge commits to the
// approval), by the user's plain-key credential, or by a developer key.
// Each node remembers the nonces it accepted: the same nonce again is a
// replay unless it comes with the same operation hash and request id (the
// gateway retrying with another signer set). A node's own record stops
// replays only through the nodes that saw the nonce, so a signing gateway
// has it recorded on ReserveQuorum(n, t) = n−t+1 nodes first (its signers,
// and nodes asked with KindReserve, whose handler is Authorize itself).
// Every denial has its own api.CodeAuth… code.
//
// # Passkey ceremonies
//
// keymesh_initiateRegistration / keymesh_completeRegistration and
// keymesh_initiateAuthentication / keymesh_completeAuthentication (and
// Passport's names without the prefix) use go-webauthn's protocol package
// for parsing and verification. Challenges are single-use and expire after
// ChallengeTTL; they are kept in the memory of the node that issued them,
// so a client completes a ceremony on the node it started it on.
package auth
