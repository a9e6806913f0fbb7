// Package oprf is a threshold oblivious PRF whose output is byte-for-byte the
// RFC 9497 OPRF output (base mode, suite ristretto255-SHA512) of a key that
// no party holds.
//
// The key k is Shamir-shared t-of-n among the nodes (package oprf/dkg makes
// and refreshes the shares without a dealer). The protocol is RFC 9497
// §3.3.1 (2HashDH, base mode), with the server's BlindEvaluate split across
// nodes:
//
//	client: r ← random, B = r·HashToGroup(x)            (Blind, RFC 9497 §3.3.1)
//	node i: Z_i = k_i·B, π_i = DLEQ(G, Y_i, B, Z_i)      (Evaluate)
//	client: verify every π_i against Y_i = k_i·G,
//	        Z = Σ λ_i·Z_i over t nodes = k·B,            (Finalize)
//	        N = r⁻¹·Z, y = Hash(len‖x‖len‖N‖"Finalize")  (RFC 9497 §3.3.1 Finalize)
//
// Base-mode evaluation is linear in the key, so Lagrange coefficients λ_i
// applied "in the exponent" recombine the shares; the partially-oblivious
// mode inverts the key and does not threshold this simply. This is the
// threshold 2HashDH of Jarecki, Kiayias, Krawczyk and Xu, "TOPPSS" (ACNS
// 2017), §3, whose security rests on the one-more gap threshold DH
// assumption: each Evaluate call is one oracle query, so the service that
// calls it must authenticate and rate-limit clients.
//
// Each node's proof π_i is the RFC 9497 §2.2 proof (GenerateProof /
// VerifyProof, with ComputeComposites) under the VOPRF context string
// "OPRFV1-\x01-ristretto255-SHA512": a node's partial evaluation is exactly
// what an RFC 9497 VOPRF server with private key k_i and public key Y_i
// returns, so any standard VOPRF verifier can check it. A partial that fails
// its proof is reported in a *NodeError naming the node.
//
// Per-application pseudonyms come from the input: ScopedInput encodes
// (scope, data) canonically with a domain separator, so one person's data
// gives unrelated outputs in different scopes.
//
// Group arithmetic, hashing to the group and the RFC 9497 Blind/Finalize
// steps are cloudflare/circl's (group.Ristretto255, oprf); ristretto255
// operations in circl are constant time in the scalar, which its
// P-256/384/521 are not. The DLEQ proof (proof.go) is written here, byte
// compatible with circl's zk/dleq but with fixed-base multiplications for
// the generator. Pure code: no I/O, no logging.
package oprf
