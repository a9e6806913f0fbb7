package config

import (
	"errors"
	"math/big"
)

// Ed25519 public-key validation, RFC 8032 §5.1.3 (decoding) plus a
// small-order check. Public keys are public, so math/big is fine here; it
// never touches a secret (STYLE.md habit 7).

var (
	edP = func() *big.Int {
		p := new(big.Int).Lsh(big.NewInt(1), 255)
		return p.Sub(p, big.NewInt(19))
	}()
	// edD = -121665 / 121666 mod p.
	edD = func() *big.Int {
		num := new(big.Int).Neg(big.NewInt(121665))
		den := new(big.Int).ModInverse(big.NewInt(121666), edP)
		num.Mul(num, den)
		return num.Mod(num, edP)
	}()
)

// checkEdwardsPoint decodes a 32-byte point as RFC 8032 §5.1.3 says (steps
// 1–4: y < p, x recovered from y, x = 0 with sign bit 1 rejected) and rejects
// points whose order divides 8.
func checkEdwardsPoint(b []byte) error {
	le := make([]byte, 32)
	for i := range 32 {
		le[31-i] = b[i]
	}
	sign := le[0] >> 7
	le[0] &= 0x7f
	y := new(big.Int).SetBytes(le)
	if y.Cmp(edP) >= 0 {
		return errors.New("not a canonical Ed25519 point encoding (y >= p)")
	}
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, edP)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	u.Mod(u, edP)
	v := new(big.Int).Mul(edD, y2)
	v.Add(v, big.NewInt(1))
	v.Mod(v, edP)
	x2 := new(big.Int).Mul(u, new(big.Int).ModInverse(v, edP))
	x2.Mod(x2, edP)
	var x *big.Int
	if x2.Sign() == 0 {
		if sign == 1 {
			return errors.New("not a canonical Ed25519 point encoding (x = 0 with sign bit set)")
		}
		x = new(big.Int)
	} else {
		x = new(big.Int).ModSqrt(x2, edP)
		if x == nil {
			return errors.New("not an Ed25519 curve point")
		}
		if uint(x.Bit(0)) != uint(sign) {
			x.Sub(edP, x)
		}
	}
	// [8]P by three doublings; P has small order iff [8]P is the identity.
	px, py := x, y
	for range 3 {
		px, py = edAdd(px, py, px, py)
	}
	if px.Sign() == 0 && py.Cmp(big.NewInt(1)) == 0 {
		return errors.New("an Ed25519 point of small order, not a usable public key")
	}
	return nil
}

// edAdd is the complete affine addition law of the twisted Edwards curve
// -x² + y² = 1 + d x² y² (RFC 8032 §5.1.4).
func edAdd(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	mod := func(z *big.Int) *big.Int { return z.Mod(z, edP) }
	x1y2 := mod(new(big.Int).Mul(x1, y2))
	y1x2 := mod(new(big.Int).Mul(y1, x2))
	y1y2 := mod(new(big.Int).Mul(y1, y2))
	x1x2 := mod(new(big.Int).Mul(x1, x2))
	t := mod(new(big.Int).Mul(edD, mod(new(big.Int).Mul(x1x2, y1y2))))
	dx := mod(new(big.Int).Add(big.NewInt(1), t))
	dy := mod(new(big.Int).Sub(big.NewInt(1), t))
	x3 := mod(new(big.Int).Mul(mod(new(big.Int).Add(x1y2, y1x2)), new(big.Int).ModInverse(dx, edP)))
	y3 := mod(new(big.Int).Mul(mod(new(big.Int).Add(y1y2, x1x2)), new(big.Int).ModInverse(dy, edP)))
	return x3, y3
}
