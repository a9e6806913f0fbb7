package curve

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// GLV decomposition (Gallant, Lambert and Vanstone, CRYPTO 2001) for
// secp256k1, in constant time: k = k1 + k2·λ (mod n) with |k1|, |k2| < 2^128,
// where λ·P = φ(P) = (β·x, y). The constants and the rounded-division method
// are those of decred's splitK (curve.go, after [STWS] §3.4.2): c1 =
// round(k·z1 / 2^320), c2 = round(k·z2 / 2^320), k2 = c1·(−b1) + c2·(−b2),
// k1 = k + k2·(−λ). decred's splitK is unexported and its caller is not
// constant time, so the split is redone here with fixed-length arithmetic.
var (
	glvNegLambda = mustScalarHex("ac9c52b33fa3cf1f5ad9e3fd77ed9ba4a880b9fc8ec739c2e0cfc810b51283cf") // −λ
	glvBeta      = fieldFromHex("7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501ee")
	glvNegB1     = mustScalarHex("e4437ed6010e88286f547fa90abfe4c3")
	glvNegB2     = mustScalarHex("fffffffffffffffffffffffffffffffe8a280ac50774346dd765cda83db1562c") // −b2
	glvZ1        = limbsFromHex("3086d221a7d46bcde86c90e49284eb153daa8a1471e8ca7f")
	glvZ2        = limbsFromHex("e4437ed6010e88286f547fa90abfe4c4221208ac9df506c6")
)

func mustScalarHex(h string) secp256k1.ModNScalar {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	var s secp256k1.ModNScalar
	if s.SetByteSlice(b) {
		panic("curve: constant overflows")
	}
	return s
}

func fieldFromHex(h string) secp256k1.FieldVal {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	var f secp256k1.FieldVal
	f.SetByteSlice(b)
	return f
}

// limbsFromHex parses a value of at most 256 bits into little-endian limbs.
func limbsFromHex(h string) [4]uint64 {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	var p [32]byte
	copy(p[32-len(b):], b)
	return bytesToLimbs(&p)
}

func bytesToLimbs(b *[32]byte) [4]uint64 {
	return [4]uint64{
		binary.BigEndian.Uint64(b[24:]), binary.BigEndian.Uint64(b[16:]),
		binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[:8]),
	}
}

// MulWide returns the 512-bit product a·b of two 256-bit integers given as
// little-endian 64-bit limbs (schoolbook multiplication), in constant time:
// bits.Mul64 and bits.Add64 do not branch on their operands.
func MulWide(a, b *[4]uint64) (p [8]uint64) {
	for i := range 4 {
		var carry uint64
		for j := range 4 {
			hi, lo := bits.Mul64(a[i], b[j])
			var c uint64
			lo, c = bits.Add64(lo, p[i+j], 0)
			hi += c
			lo, c = bits.Add64(lo, carry, 0)
			hi += c
			p[i+j] = lo
			carry = hi
		}
		p[i+4] = carry
	}
	return p
}

// mulRsh320Round returns round(a·b / 2^320) for 256-bit a and b, as a
// scalar (the result is below 2^192), in constant time.
func mulRsh320Round(a, b *[4]uint64) secp256k1.ModNScalar {
	p := MulWide(a, b)
	// Bits 320 and up are limbs 5..7; bit 319 (top of limb 4) rounds.
	round := p[4] >> 63
	var r [3]uint64
	var c uint64
	r[0], c = bits.Add64(p[5], round, 0)
	r[1], c = bits.Add64(p[6], 0, c)
	r[2], _ = bits.Add64(p[7], 0, c)
	var out [32]byte
	binary.BigEndian.PutUint64(out[24:], r[0])
	binary.BigEndian.PutUint64(out[16:], r[1])
	binary.BigEndian.PutUint64(out[8:], r[2])
	var s secp256k1.ModNScalar
	s.SetBytes(&out)
	clear(p[:])
	return s
}

// condNegate sets s = −s if neg == 1, in constant time.
func condNegate(s *secp256k1.ModNScalar, neg uint32) {
	var n secp256k1.ModNScalar
	n.NegateVal(s)
	a, b := s.Bytes(), n.Bytes()
	m := byte(0) - byte(neg&1)
	for i := range a {
		a[i] = (a[i] &^ m) | (b[i] & m)
	}
	s.SetBytes(&a)
	clear(a[:])
	clear(b[:])
}

// glvSplit returns k1, k2 below 2^128 and signs neg1, neg2 ∈ {0, 1} with
// k ≡ (−1)^neg1·k1 + (−1)^neg2·k2·λ (mod n), in constant time.
func glvSplit(k *secp256k1.ModNScalar) (k1, k2 secp256k1.ModNScalar, neg1, neg2 uint32) {
	kb := k.Bytes()
	kl := bytesToLimbs(&kb)
	clear(kb[:])
	c1 := mulRsh320Round(&kl, &glvZ1)
	c2 := mulRsh320Round(&kl, &glvZ2)
	clear(kl[:])
	k2.Add2(c1.Mul(&glvNegB1), c2.Mul(&glvNegB2))
	k1.Mul2(&k2, &glvNegLambda).Add(k)
	c1.Zero()
	c2.Zero()
	neg1 = boolBit(k1.IsOverHalfOrder())
	neg2 = boolBit(k2.IsOverHalfOrder())
	condNegate(&k1, neg1)
	condNegate(&k2, neg2)
	return k1, k2, neg1, neg2
}

// boolBit converts a bool computed in constant time to 0 or 1 without a
// branch the compiler would keep.
func boolBit(b bool) uint32 {
	var x uint32
	if b {
		x = 1
	}
	return x
}
