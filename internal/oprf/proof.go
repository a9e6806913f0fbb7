package oprf

import (
	"crypto/sha512"
	"encoding/binary"

	"github.com/cloudflare/circl/group"
)

// The DLEQ proof of RFC 9497 §2.2 for one evaluated element, written out so
// that the fixed-base multiplications r·G (prover) and s·G (verifier) use
// the precomputed generator table (circl's zk/dleq multiplies the generator
// as a variable base, about 2.4 times slower). The bytes are those of RFC
// 9497, checked against its Appendix A.1.2 vectors and against circl's
// VOPRF client in the tests.

// contextString is RFC 9497 §3.1's contextString for the VOPRF mode:
// "OPRFV1-" ‖ I2OSP(0x01, 1) ‖ "-" ‖ "ristretto255-SHA512". A node's proof
// is thus the proof an RFC 9497 VOPRF server with key k_i would send.
const contextString = "OPRFV1-\x01-" + SuiteID

var (
	seedDST         = []byte("Seed-" + contextString)
	hashToScalarDST = []byte("HashToScalar-" + contextString)
)

type proof struct {
	c, s group.Scalar
}

func (p *proof) marshal() []byte {
	return append(mustEncodeScalar(p.c), mustEncodeScalar(p.s)...)
}

func parseProof(b []byte) (*proof, error) {
	c, err := decodeScalar(b[:scalarLen])
	if err != nil {
		return nil, err
	}
	s, err := decodeScalar(b[scalarLen:])
	if err != nil {
		return nil, err
	}
	return &proof{c: c, s: s}, nil
}

// appendLP appends I2OSP(len(x), 2) ‖ x.
func appendLP(b, x []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(x)))
	return append(b, x...)
}

// composite is RFC 9497 §2.2.1 ComputeComposites for m = 1, returning the
// composite element M = d_0·C_0 and d_0 (so Z = d_0·D_0 or k·M). bm is
// SerializeElement(B).
func composite(bm []byte, c, d group.Element) (group.Scalar, group.Element) {
	seedTranscript := appendLP(appendLP(nil, bm), seedDST)
	seed := sha512.Sum512(seedTranscript)
	t := appendLP(nil, seed[:])
	t = binary.BigEndian.AppendUint16(t, 0) // I2OSP(i, 2), i = 0
	t = appendLP(t, mustEncode(c))
	t = appendLP(t, mustEncode(d))
	t = append(t, "Composite"...)
	di := g.HashToScalar(t, hashToScalarDST)
	return di, g.NewElement().Mul(c, di)
}

// challenge is the challenge of RFC 9497 §2.2.1 GenerateProof and §2.2.2
// VerifyProof.
func challenge(bm []byte, m, z, t2, t3 group.Element) group.Scalar {
	t := appendLP(nil, bm)
	for _, e := range []group.Element{m, z, t2, t3} {
		t = appendLP(t, mustEncode(e))
	}
	t = append(t, "Challenge"...)
	return g.HashToScalar(t, hashToScalarDST)
}

// generateProof is RFC 9497 §2.2.1 GenerateProof(k, A = G, B = k·G, C =
// [c], D = [d]) with randomness r, using ComputeCompositesFast.
func generateProof(k group.Scalar, b, c, d group.Element, r group.Scalar) *proof {
	bm := mustEncode(b)
	_, m := composite(bm, c, d)
	z := g.NewElement().Mul(m, k)
	t2 := g.NewElement().MulGen(r)
	t3 := g.NewElement().Mul(m, r)
	ch := challenge(bm, m, z, t2, t3)
	s := g.NewScalar().Mul(ch, k)
	s.Sub(r, s)
	return &proof{c: ch, s: s}
}

// verifyProof is RFC 9497 §2.2.2 VerifyProof(A = G, B, C = [c], D = [d],
// proof).
func verifyProof(b, c, d group.Element, p *proof) bool {
	bm := mustEncode(b)
	di, m := composite(bm, c, d)
	z := g.NewElement().Mul(d, di)
	t2 := g.NewElement().MulGen(p.s)
	t2.Add(t2, g.NewElement().Mul(b, p.c))
	t3 := g.NewElement().Mul(m, p.s)
	t3.Add(t3, g.NewElement().Mul(z, p.c))
	return challenge(bm, m, z, t2, t3).IsEqual(p.c)
}
