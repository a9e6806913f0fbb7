package oprf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/group"
)

// Request is the client's blinded element B = r·HashToGroup(input), sent to
// every node it asks to evaluate.
type Request struct {
	b group.Element
}

// MarshalBinary encodes the request as version(1)=1 ‖ B(32).
func (r *Request) MarshalBinary() ([]byte, error) {
	return append([]byte{encodingVersion}, mustEncode(r.b)...), nil
}

// ParseRequest decodes a request strictly: a non-canonical or identity
// element, another version or a wrong length is an error.
func ParseRequest(b []byte) (*Request, error) {
	if len(b) != 1+elementLen {
		return nil, fmt.Errorf("oprf: request of %d bytes, want %d", len(b), 1+elementLen)
	}
	if b[0] != encodingVersion {
		return nil, fmt.Errorf("oprf: unknown request version %d", b[0])
	}
	e, err := decodeElement(b[1:])
	if err != nil {
		return nil, fmt.Errorf("oprf: blinded element: %w", err)
	}
	return &Request{b: e}, nil
}

// Partial is one node's evaluation Z_i = k_i·B with its DLEQ proof that
// log_G(Y_i) = log_B(Z_i).
type Partial struct {
	id    uint16
	z     group.Element
	proof *proof
}

// ID returns the index of the node that claims to have made the partial.
// Finalize and Verify name nodes by this index; the caller must check that it
// is the index of the peer the partial came from (a node that claims another
// node's index can only replay that node's correct partial, since its own
// would fail the proof under the other node's verification share).
func (p *Partial) ID() uint16 { return p.id }

const partialLen = 1 + 2 + elementLen + proofLen

// MarshalBinary encodes the partial as
//
//	version(1)=1 ‖ id(2) ‖ Z_i(32) ‖ proof c(32) ‖ proof s(32)
//
// where (c, s) is the RFC 9497 §2.2.1 proof encoding.
func (p *Partial) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, partialLen)
	b = append(b, encodingVersion)
	b = binary.BigEndian.AppendUint16(b, p.id)
	b = append(b, mustEncode(p.z)...)
	return append(b, p.proof.marshal()...), nil
}

// ParsePartial decodes a partial strictly. It does not verify the proof;
// Finalize does.
func ParsePartial(b []byte) (*Partial, error) {
	if len(b) != partialLen {
		return nil, fmt.Errorf("oprf: partial of %d bytes, want %d", len(b), partialLen)
	}
	if b[0] != encodingVersion {
		return nil, fmt.Errorf("oprf: unknown partial version %d", b[0])
	}
	id := binary.BigEndian.Uint16(b[1:])
	if id == 0 {
		return nil, errors.New("oprf: partial from node 0")
	}
	z, err := decodeElement(b[3 : 3+elementLen])
	if err != nil {
		return nil, fmt.Errorf("oprf: partial of node %d: %w", id, err)
	}
	pr, err := parseProof(b[3+elementLen:])
	if err != nil {
		return nil, fmt.Errorf("oprf: proof of node %d: %w", id, err)
	}
	return &Partial{id: id, z: z, proof: pr}, nil
}

// Evaluate is a node's half of RFC 9497 BlindEvaluate for its share: it
// returns Z_i = k_i·B and the proof (RFC 9497 §2.2.1 GenerateProof with
// fresh randomness, over A = G, B = Y_i, C = [B], D = [Z_i]) that Z_i used
// the same k_i as the node's verification share. It does not learn the
// input.
func Evaluate(share *KeyShare, req *Request) (*Partial, error) {
	return evaluate(share, req, g.RandomScalar(rand.Reader))
}

func evaluate(share *KeyShare, req *Request, r group.Scalar) (*Partial, error) {
	if share == nil || req == nil || req.b == nil {
		return nil, errors.New("oprf: nil share or request")
	}
	if req.b.IsIdentity() {
		return nil, errors.New("oprf: identity blinded element")
	}
	z := g.NewElement().Mul(req.b, share.k)
	y := share.pub.share(share.id)
	pr := generateProof(share.k, y, req.b, z, r)
	r.SetUint64(0)
	return &Partial{id: share.id, z: z, proof: pr}, nil
}

// verify is RFC 9497 §2.2.2 VerifyProof for p against Y_i.
func (p *Partial) verify(y group.Element, b group.Element) bool {
	return verifyProof(y, b, p.z, p.proof)
}

// Verify checks p's proof against its node's verification share in pub and
// the request it answers, as Finalize does, for a party (a gateway, an
// auditor) that holds the request but not the blind. It returns a
// *NodeError naming the node on failure.
func (p *Partial) Verify(pub *PublicKey, req *Request) error {
	if pub == nil || req == nil || req.b == nil {
		return errors.New("oprf: nil public key or request")
	}
	y := pub.share(p.id)
	if y == nil {
		return &NodeError{Nodes: []uint16{p.id}, Err: fmt.Errorf("node %d not in the key", p.id)}
	}
	if !p.verify(y, req.b) {
		return &NodeError{Nodes: []uint16{p.id}, Err: ErrBadProof}
	}
	return nil
}
