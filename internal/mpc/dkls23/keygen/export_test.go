package keygen

import (
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// TestingOnlyReshareWithSecret is NewReshareSession for a dealer that deals
// from secret instead of its real share: a cheating dealer.
func TestingOnlyReshareWithSecret(cfg ReshareConfig, secret *secp256k1.ModNScalar, rand io.Reader) (*round.Session, error) {
	c, sid, err := newReshareConfig(cfg, rand)
	if err != nil {
		return nil, err
	}
	c.testingOnlySecret = secret
	return c.session(sid)
}

// TestingOnlyKeygenWithOpening is NewSession for a dealer that commits to
// and opens opening (salt, commitment vector, proof: the fields of a round-3
// broadcast) instead of its own.
func TestingOnlyKeygenWithOpening(self round.PartyID, parties []round.PartyID, threshold int, nonce []byte, opening [][]byte, rand io.Reader) (*round.Session, error) {
	s, err := NewSession(self, parties, threshold, nonce, rand)
	if err != nil {
		return nil, err
	}
	sid, err := round.NewSessionID(ProtocolKeygen, parties, threshold, nonce)
	if err != nil {
		return nil, err
	}
	c := &config{
		self: self, all: s.Parties(), dealers: s.Parties(), receivers: s.Parties(), threshold: threshold,
		rand: rand, isKeygen: true, protocol: ProtocolKeygen, testingOnlyOpening: opening,
	}
	return c.session(sid)
}
