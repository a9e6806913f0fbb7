package dkg

import (
	"errors"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

const (
	messageVersion = 1
	elementLen     = 32
	scalarLen      = 32
)

// commitMsg is a dealer's round-1 broadcast: its Feldman commitments
// C_first … C_(t−1) and, for key generation, the Schnorr proof (R, μ) of
// knowledge of a_0.
//
//	version(1)=1 ‖ C_first(32) ‖ … ‖ C_(t−1)(32) [‖ R(32) ‖ μ(32)]
//
// The number of commitments is fixed by the session (t, or t−1 for a
// refresh), so the encoding has one length and no count field.
type commitMsg struct {
	c  []group.Element
	r  group.Element // nil for refresh
	mu group.Scalar  // nil for refresh
}

func commitMsgLen(t int, refresh bool) int {
	if refresh {
		return 1 + (t-1)*elementLen
	}
	return 1 + t*elementLen + elementLen + scalarLen
}

func (m *commitMsg) marshal() []byte {
	b := []byte{messageVersion}
	for _, c := range m.c {
		b = appendElement(b, c)
	}
	if m.r != nil {
		b = appendElement(b, m.r)
		s, _ := m.mu.MarshalBinary()
		b = append(b, s...)
	}
	return b
}

// parseCommitMsg decodes a round-1 broadcast for threshold t strictly: wrong
// length or version, non-canonical encodings and identity commitments are
// errors.
func parseCommitMsg(b []byte, t int, refresh bool) (*commitMsg, error) {
	if want := commitMsgLen(t, refresh); len(b) != want {
		return nil, fmt.Errorf("commitments of %d bytes, want %d", len(b), want)
	}
	if b[0] != messageVersion {
		return nil, fmt.Errorf("unknown commitment message version %d", b[0])
	}
	b = b[1:]
	n := t
	if refresh {
		n = t - 1
	}
	m := &commitMsg{c: make([]group.Element, n)}
	for k := range n {
		e, err := parseElement(b[:elementLen])
		if err != nil {
			return nil, fmt.Errorf("commitment %d: %w", k, err)
		}
		m.c[k] = e
		b = b[elementLen:]
	}
	if refresh {
		return m, nil
	}
	var err error
	if m.r, err = parseElement(b[:elementLen]); err != nil {
		return nil, fmt.Errorf("proof of knowledge: %w", err)
	}
	m.mu = g.NewScalar()
	if err := m.mu.UnmarshalBinary(b[elementLen:]); err != nil {
		return nil, errors.New("proof of knowledge: non-canonical scalar")
	}
	return m, nil
}

// shareMsg is a dealer's round-2 direct message to party j: f(j).
//
//	version(1)=1 ‖ f(j)(32)
func marshalShare(s group.Scalar) []byte {
	b, _ := s.MarshalBinary()
	return append([]byte{messageVersion}, b...)
}

func parseShare(b []byte) (group.Scalar, error) {
	if len(b) != 1+scalarLen {
		return nil, fmt.Errorf("share of %d bytes, want %d", len(b), 1+scalarLen)
	}
	if b[0] != messageVersion {
		return nil, fmt.Errorf("unknown share message version %d", b[0])
	}
	s := g.NewScalar()
	if err := s.UnmarshalBinary(b[1:]); err != nil {
		return nil, errors.New("non-canonical share")
	}
	return s, nil
}

func parseElement(b []byte) (group.Element, error) {
	e := g.NewElement()
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, errors.New("invalid ristretto255 encoding")
	}
	if e.IsIdentity() {
		return nil, errors.New("identity element")
	}
	return e, nil
}

func appendElement(b []byte, e group.Element) []byte {
	eb, err := e.MarshalBinaryCompress()
	if err != nil {
		panic("dkg: cannot encode element: " + err.Error())
	}
	return append(b, eb...)
}

// pokChallenge is the Schnorr challenge c = H(sid, i, C_i, R) of FROST
// KeyGen round 1 step 2, bound here to every commitment of the dealer, not
// only C_i0, as a cSHAKE256 transcript hashed to a scalar.
func pokChallenge(sid round.SessionID, from round.PartyID, cs []group.Element, r group.Element) group.Scalar {
	t := round.NewTranscript("keymesh oprf dkg proof of knowledge")
	t.WriteBytes(sid[:])
	t.WriteUint64(uint64(from))
	for _, c := range cs {
		t.WriteBytes(appendElement(nil, c))
	}
	t.WriteBytes(appendElement(nil, r))
	return g.HashToScalar(t.Read(nil, 64), []byte("keymesh/oprf/dkg/pok/v1"))
}

// confirmation is the round-3 broadcast: a digest of the session and the
// public key a party computed.
func confirmation(sid round.SessionID, pub []byte) []byte {
	t := round.NewTranscript("keymesh oprf dkg confirmation")
	t.WriteBytes(sid[:])
	t.WriteBytes(pub)
	return t.Sum(nil)
}
