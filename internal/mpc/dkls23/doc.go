// Package dkls23 holds the types shared by keymesh's implementation of
// threshold ECDSA over secp256k1 with the protocol of Doerner, Kondi, Lee and
// shelat, "Threshold ECDSA in Three Rounds" (IEEE S&P 2024, IACR ePrint
// 2023/765), called DKLs23 below:
//
//   - Share, one party's key share record: its Shamir share of the secret
//     key, the public key, every party's public share, and the pairwise
//     state that signing needs (the random-VOLE setups of DKLs23 §3, built on
//     OT extension, in both directions with every peer, and the pairwise
//     seeds of the zero-sharing functionality F_Zero), and the peers it
//     refuses to sign with since they were caught cheating (Refuse: safe
//     for concurrent use, effective at once in every open signing session,
//     kept by every copy, the encoding, refresh and resharing). Share
//     has a versioned, canonical, strictly decoded binary encoding and never
//     prints its secrets;
//   - Signature, an ECDSA signature (r, s, v) normalised to low s with the
//     recovery id that Ethereum's ecrecover expects;
//   - Lagrange coefficients over party IDs, used as Shamir evaluation points;
//   - the length-prefixed field encoding of protocol payloads (AppendField,
//     SplitFields): one encoding per value, strict decoding.
//
// Subpackage dlog is the Schnorr proof of knowledge used by key generation;
// dkls23test runs the protocols with every party in one process, for tests
// and benchmarks.
//
// The protocols live in subpackages, each a chain of rounds on the engine in
// internal/mpc/round: keygen (distributed key generation, refresh and
// resharing) and sign (DKLs23 Protocol 3.6). The code is pure: no I/O, no
// logging, no goroutines.
package dkls23
