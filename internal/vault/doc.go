// Package vault is the cryptographic core of keymesh's personal-data vault:
// NaCl boxes sealed with ephemeral sender keys, issuer-signed credential
// records, access grants whose copies are re-encrypted for the grantee, and
// delegated write grants signed by the data owner's Ethereum wallet.
//
// Everything here is byte-compatible with the idOS SDK (idos-sdk-js,
// packages/utils/src/encryption and the issuer SDK's credential builder), so
// data written by either side opens in the other:
//
//   - A box is NaCl crypto_box, x25519-xsalsa20-poly1305 (Bernstein,
//     "Cryptography in NaCl", 2009; X25519 is RFC 7748 §5, XSalsa20 is
//     Bernstein's "Extending the Salsa20 nonce", 2011). Its stored form is
//     idOS's: content = nonce(24) ‖ crypto_box output (tag(16) ‖ ciphertext),
//     with the sender's ephemeral public key kept beside it as the
//     encryptor_public_key field. Every SealTo draws a fresh ephemeral key
//     pair and forgets its secret half, so the sender cannot open what it
//     sealed and a leaked issuer key opens nothing.
//   - A credential carries the two Ed25519 (RFC 8032 §5.1) issuer signatures
//     idOS checks: public_notes_signature over the UTF-8 public notes, and
//     broader_signature over public_notes_signature ‖ content.
//   - An access grant names the owner, the grantee's encryption key, the
//     original and the copy, a timelock before which it cannot be revoked,
//     and content_hash = SHA-256 of the plaintext. MakeCopy opens the
//     original with the owner's key, checks the hash and re-seals to the
//     grantee with a fresh ephemeral key.
//   - A delegated write grant is a text message the owner signs with
//     EIP-191 personal_sign; VerifyDelegatedGrant recovers the signer.
//
// Password-derived keys (idOS "KDF v0.1", scrypt over the NFKC password with
// the user id as salt) are in the sub-package kdf.
//
// The package does no I/O and never logs. Nonces and ephemeral keys come from
// crypto/rand only. Errors never contain plaintext or key bytes. Private
// keys are held in types that print as "redacted" and compare in constant
// time.
package vault
