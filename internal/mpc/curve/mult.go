package curve

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ScalarBaseMult sets result to k·G in constant time (in k). The result is
// affine (Z = 1), or all zero when k is zero.
func ScalarBaseMult(k *secp256k1.ModNScalar, result *secp256k1.JacobianPoint) {
	// Stub: replaced by the constant-time implementation.
	secp256k1.ScalarBaseMultNonConst(k, result)
	normalize(result)
}

// ScalarMult sets result to k·p in constant time (in k). p is public and may
// be in any Jacobian form, including the identity (Z = 0). The result is
// affine (Z = 1), or all zero for the identity.
func ScalarMult(k *secp256k1.ModNScalar, p, result *secp256k1.JacobianPoint) {
	// Stub: replaced by the constant-time implementation.
	secp256k1.ScalarMultNonConst(k, p, result)
	normalize(result)
}

func normalize(p *secp256k1.JacobianPoint) {
	if (p.X.IsZero() && p.Y.IsZero()) || p.Z.IsZero() {
		p.X.Zero()
		p.Y.Zero()
		p.Z.Zero()
		return
	}
	p.ToAffine()
}
