// Package channel is the end-to-end protocol between two parties (an issuer
// and a holder) who talk through keymesh's relay: a handshake that a secret
// passed out of band (a QR code) authenticates, then messages the relay can
// carry but not read, alter, inject, replay, reorder or reflect. The relay
// service stores and forwards the bytes this package makes; it holds no key.
//
// The design is the one DESIGN.md asks for ("Notes for the data-side
// services", relay handshake):
//
//   - The inviter draws a 256-bit secret s and shows it out of band
//     (Invite.Text, for a QR code). Both sides derive from s, with HKDF
//     (RFC 5869) under distinct labels: the mailbox id the relay routes by
//     (one-way: the relay cannot get s from it), a MAC key and an HPKE PSK.
//
//   - Handshake, two messages, each party with a fresh X25519 key pair for
//     this channel:
//
//     joiner → inviter   hello   = pk_J ‖ HMAC(k_mac, "joiner"  ‖ mailbox ‖ pk_J)
//     inviter → joiner   welcome = pk_I ‖ HMAC(k_mac, "inviter" ‖ mailbox ‖ pk_J ‖ pk_I)
//
//     Because s is high-entropy, a MAC over the transcript keyed by it,
//     labelled with the sender's role, authenticates each public key; no
//     PAKE is needed. The relay never sees s; a mailbox id or a token alone
//     opens nothing. An invite accepts one hello and is then spent: a hello
//     replayed later finds no invite.
//
//   - Messages: each is one HPKE single-shot encryption (RFC 9180) in
//     AuthPSK mode (§5.1.4) from the sender's static channel key to the
//     receiver's, suite DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//     ChaCha20-Poly1305, with the PSK from s. Auth mode authenticates the
//     sender: base-mode HPKE, or a box from an ephemeral key, would let the
//     relay inject messages. The associated data holds the protocol label,
//     the mailbox id, the sender's role, the message type and its sequence
//     number, so a message opens only in its channel, in its direction and
//     at its place: the receiver takes sequence numbers strictly in order
//     and says which one is missing.
//
//   - Key rotation (Channel.Rotate): a message of its own type, sealed
//     under the current keys, announces the sender's new public key; its
//     later messages come from the new key.
//
// What it does not give: forward secrecy against the later theft of a
// party's channel key (AuthPSK's shared secret involves the static keys;
// rotate keys to bound what one theft opens), or hiding from the relay how
// many messages of what size pass and when.
//
// Pure code: no I/O, no logging. The secret, the MAC key, the PSK and the
// private keys are held in unexported fields and never printed; MACs are
// compared in constant time. HPKE is cloudflare/circl's.
package channel
