package oprf

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/group"
)

// PublicKey is the public side of a t-of-n shared OPRF key: the key Y = k·G
// and every node's verification share Y_i = k_i·G, where k_i = f(i) for a
// polynomial f of degree t−1 with f(0) = k. It is immutable.
type PublicKey struct {
	t      int
	ids    []uint16 // sorted
	y      group.Element
	shares []group.Element // shares[j] = Y_{ids[j]}
}

// MaxNodes bounds the number of nodes sharing a key, so that checking a
// public key (O(n·t) group operations) stays cheap on untrusted input.
const MaxNodes = 64

// NewPublicKey checks and assembles a public key. ids are the nodes'
// evaluation points (non-zero, distinct), shares their verification shares
// in the same order, y the public key. It verifies that the shares lie on
// one polynomial of degree t−1 whose value at 0 is y, so an inconsistent set
// is rejected (cost: (n−t+1)·t scalar multiplications).
func NewPublicKey(threshold int, y group.Element, ids []uint16, shares []group.Element) (*PublicKey, error) {
	n := len(ids)
	if n == 0 || n != len(shares) {
		return nil, fmt.Errorf("oprf: %d node ids for %d shares", n, len(shares))
	}
	if n > MaxNodes {
		return nil, fmt.Errorf("oprf: %d nodes, at most %d are supported", n, MaxNodes)
	}
	if threshold < 1 || threshold > n {
		return nil, fmt.Errorf("oprf: threshold %d out of range for %d nodes", threshold, n)
	}
	pk := &PublicKey{t: threshold, ids: make([]uint16, n), shares: make([]group.Element, n)}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(ids[a]) - int(ids[b]) })
	for j, o := range order {
		if ids[o] == 0 {
			return nil, errors.New("oprf: node id 0")
		}
		if j > 0 && pk.ids[j-1] == ids[o] {
			return nil, fmt.Errorf("oprf: node %d appears twice", ids[o])
		}
		if shares[o] == nil || shares[o].IsIdentity() {
			return nil, fmt.Errorf("oprf: node %d has an identity verification share", ids[o])
		}
		pk.ids[j] = ids[o]
		pk.shares[j] = shares[o].Copy()
	}
	if y == nil || y.IsIdentity() {
		return nil, errors.New("oprf: identity public key")
	}
	pk.y = y.Copy()
	// Interpolate from the first t shares and check y and the other shares.
	base := pk.ids[:threshold]
	check := func(x uint16, want group.Element) bool {
		acc := g.Identity()
		tmp := g.NewElement()
		for i := range base {
			acc.Add(acc, tmp.Mul(pk.shares[i], lagrange(base, i, x)))
		}
		return acc.IsEqual(want)
	}
	if !check(0, pk.y) {
		return nil, errors.New("oprf: verification shares do not interpolate to the public key")
	}
	for j := threshold; j < n; j++ {
		if !check(pk.ids[j], pk.shares[j]) {
			return nil, fmt.Errorf("oprf: verification share of node %d is not on the polynomial", pk.ids[j])
		}
	}
	return pk, nil
}

// Threshold returns t, the number of nodes needed to evaluate.
func (pk *PublicKey) Threshold() int { return pk.t }

// IDs returns the nodes' ids, sorted.
func (pk *PublicKey) IDs() []uint16 { return slices.Clone(pk.ids) }

// Element returns a copy of the public key Y = k·G.
func (pk *PublicKey) Element() group.Element { return pk.y.Copy() }

// Bytes returns the 32-byte encoding of Y (RFC 9497 SerializeElement), the
// pkS that an RFC 9497 VOPRF client would use with the combined key.
func (pk *PublicKey) Bytes() []byte { return mustEncode(pk.y) }

// Share returns a copy of node id's verification share Y_id = k_id·G.
func (pk *PublicKey) Share(id uint16) (group.Element, bool) {
	j, ok := slices.BinarySearch(pk.ids, id)
	if !ok {
		return nil, false
	}
	return pk.shares[j].Copy(), true
}

func (pk *PublicKey) share(id uint16) group.Element {
	j, ok := slices.BinarySearch(pk.ids, id)
	if !ok {
		return nil
	}
	return pk.shares[j]
}

// Equal reports whether two public keys have the same threshold, nodes and
// elements.
func (pk *PublicKey) Equal(o *PublicKey) bool {
	if pk.t != o.t || !slices.Equal(pk.ids, o.ids) || !pk.y.IsEqual(o.y) {
		return false
	}
	for j := range pk.shares {
		if !pk.shares[j].IsEqual(o.shares[j]) {
			return false
		}
	}
	return true
}

// MarshalBinary encodes the public key canonically:
//
//	version(1)=1 ‖ t(2) ‖ n(2) ‖ Y(32) ‖ n × (id(2) ‖ Y_id(32))
//
// integers big-endian, ids strictly increasing.
func (pk *PublicKey) MarshalBinary() ([]byte, error) {
	return pk.appendBinary(nil), nil
}

func (pk *PublicKey) appendBinary(b []byte) []byte {
	b = append(b, encodingVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(pk.t))
	b = binary.BigEndian.AppendUint16(b, uint16(len(pk.ids)))
	b = append(b, mustEncode(pk.y)...)
	for j, id := range pk.ids {
		b = binary.BigEndian.AppendUint16(b, id)
		b = append(b, mustEncode(pk.shares[j])...)
	}
	return b
}

// ParsePublicKey decodes what MarshalBinary produced. It is strict: unknown
// versions, non-canonical or identity elements, unsorted ids, inconsistent
// shares and trailing bytes are errors.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	pk, rest, err := parsePublicKey(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("oprf: %d trailing bytes after public key", len(rest))
	}
	return pk, nil
}

func parsePublicKey(b []byte) (*PublicKey, []byte, error) {
	const head = 1 + 2 + 2 + elementLen
	if len(b) < head {
		return nil, nil, errors.New("oprf: truncated public key")
	}
	if b[0] != encodingVersion {
		return nil, nil, fmt.Errorf("oprf: unknown public key version %d", b[0])
	}
	t := int(binary.BigEndian.Uint16(b[1:]))
	n := int(binary.BigEndian.Uint16(b[3:]))
	if n > MaxNodes {
		return nil, nil, fmt.Errorf("oprf: public key of %d nodes, at most %d are supported", n, MaxNodes)
	}
	y, err := decodeElement(b[5:head])
	if err != nil {
		return nil, nil, fmt.Errorf("oprf: public key: %w", err)
	}
	b = b[head:]
	if len(b) < n*(2+elementLen) {
		return nil, nil, errors.New("oprf: truncated public key shares")
	}
	ids := make([]uint16, n)
	shares := make([]group.Element, n)
	for j := range n {
		ids[j] = binary.BigEndian.Uint16(b)
		if j > 0 && ids[j] <= ids[j-1] {
			return nil, nil, errors.New("oprf: public key node ids not strictly increasing")
		}
		if shares[j], err = decodeElement(b[2 : 2+elementLen]); err != nil {
			return nil, nil, fmt.Errorf("oprf: verification share of node %d: %w", ids[j], err)
		}
		b = b[2+elementLen:]
	}
	pk, err := NewPublicKey(t, y, ids, shares)
	if err != nil {
		return nil, nil, err
	}
	return pk, b, nil
}

// KeyShare is one node's share k_i of the OPRF key, with the public key it
// belongs to. The secret never prints (Format redacts it), is compared only
// in constant time (Equal), and can be wiped (Zero). KeyShare values are not
// comparable with ==.
type KeyShare struct {
	_   [0]func() // not comparable
	id  uint16
	k   group.Scalar
	pub *PublicKey
}

// NewKeyShare returns node id's share k with public key pub, after checking
// that k·G is id's verification share in pub. k is copied.
func NewKeyShare(id uint16, k group.Scalar, pub *PublicKey) (*KeyShare, error) {
	if pub == nil || k == nil {
		return nil, errors.New("oprf: nil key share input")
	}
	want := pub.share(id)
	if want == nil {
		return nil, fmt.Errorf("oprf: node %d is not in the public key", id)
	}
	if k.IsZero() {
		return nil, errors.New("oprf: zero key share")
	}
	if !g.NewElement().MulGen(k).IsEqual(want) {
		return nil, fmt.Errorf("oprf: key share of node %d does not match its verification share", id)
	}
	return &KeyShare{id: id, k: k.Copy(), pub: pub}, nil
}

// ID returns the node's id (its Shamir evaluation point).
func (s *KeyShare) ID() uint16 { return s.id }

// Public returns the public key the share belongs to.
func (s *KeyShare) Public() *PublicKey { return s.pub }

// Equal reports in constant time (in the secret) whether two shares are the
// same share of the same key.
func (s *KeyShare) Equal(o *KeyShare) bool {
	a, b := mustEncodeScalar(s.k), mustEncodeScalar(o.k)
	return subtle.ConstantTimeCompare(a, b) == 1 && s.id == o.id && s.pub.Equal(o.pub)
}

// Zero overwrites the secret share. The KeyShare must not be used after.
func (s *KeyShare) Zero() {
	if s.k != nil {
		s.k.SetUint64(0)
	}
}

// Format prints the node id and the public key only, never the secret, for
// every verb (%v, %+v, %#v, %s, %x...).
func (s KeyShare) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "oprf.KeyShare{node %d, secret redacted}", s.id)
}

// Refreshed returns the share k_i + delta under the public key pub, after
// checking it against pub's verification share for this node. It is the
// last step of a share refresh (package oprf/dkg); s is unchanged.
func (s *KeyShare) Refreshed(delta group.Scalar, pub *PublicKey) (*KeyShare, error) {
	k := g.NewScalar().Add(s.k, delta)
	defer k.SetUint64(0)
	return NewKeyShare(s.id, k, pub)
}

// MarshalBinary encodes the share, secret included, for sealed storage:
//
//	version(1)=1 ‖ id(2) ‖ k_i(32, RFC 9497 SerializeScalar) ‖ PublicKey encoding
//
// The result is secret: seal it before it leaves memory.
func (s *KeyShare) MarshalBinary() ([]byte, error) {
	b := []byte{encodingVersion}
	b = binary.BigEndian.AppendUint16(b, s.id)
	b = append(b, mustEncodeScalar(s.k)...)
	return s.pub.appendBinary(b), nil
}

// ParseKeyShare decodes what KeyShare.MarshalBinary produced, strictly, and
// checks the share against its verification share.
func ParseKeyShare(b []byte) (*KeyShare, error) {
	const head = 1 + 2 + scalarLen
	if len(b) < head {
		return nil, errors.New("oprf: truncated key share")
	}
	if b[0] != encodingVersion {
		return nil, fmt.Errorf("oprf: unknown key share version %d", b[0])
	}
	id := binary.BigEndian.Uint16(b[1:])
	k, err := decodeScalar(b[3:head])
	if err != nil {
		return nil, fmt.Errorf("oprf: key share: %w", err)
	}
	defer k.SetUint64(0)
	pub, err := ParsePublicKey(b[head:])
	if err != nil {
		return nil, err
	}
	return NewKeyShare(id, k, pub)
}
