// Package curve holds the secp256k1 operations that keymesh's MPC code needs
// and that decred's secp256k1 package does not give in constant time, plus
// strict encodings of points and scalars.
//
// decred's field (FieldVal) and scalar (ModNScalar) arithmetic is constant
// time, but its point multiplications ScalarBaseMultNonConst and
// ScalarMultNonConst are not. ScalarBaseMult and ScalarMult here have the
// same shapes and are constant time in the scalar: fixed 4-bit windows,
// table lookups that touch every entry, the GLV endomorphism split
// k = k1 + k2·λ into 128-bit halves for ScalarMult (computed with
// fixed-length arithmetic, glv.go), and the complete addition and
// doubling formulas for short Weierstrass curves with a = 0 of Renes,
// Costello and Batina, "Complete addition formulas for prime order elliptic
// curves" (EUROCRYPT 2016, ePrint 2015/1060), Algorithms 7 (addition),
// 8 (mixed addition) and 9 (doubling), in homogeneous projective
// coordinates. Complete formulas have no special cases (identity, P = Q,
// P = -Q), so there is no branch on secret data. Points are public: the input
// point of ScalarMult may be converted to affine coordinates in variable
// time.
//
// Also constant time: Add (complete addition of two points, for a sum that
// involves a secret point), Select (a point chosen by a secret bit), and
// Table, the precomputed windows of one public point for repeated
// multiplications (the base-OT receiver multiplies the sender's point 128
// times). ScalarBaseMult uses the same kind of table for G, built once.
//
// The identity point is represented, in results, as the JacobianPoint with
// X = Y = Z = 0. Every other result is normalised to affine form with Z = 1.
//
// Encodings: points are compressed SEC1 (33 bytes, 0x02/0x03 ‖ x); DecodePoint
// rejects the identity, x >= p, an x that is not on the curve and any other
// length. Scalars are 32 bytes big-endian; DecodeScalar rejects values >= n,
// DecodeNonZeroScalar also rejects zero.
package curve
