package keygen

import (
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// TestingOnlyReshareWithSecret is NewReshareSession for a dealer that deals
// from secret instead of its real share: a cheating dealer.
func TestingOnlyReshareWithSecret(cfg ReshareConfig, secret *secp256k1.ModNScalar, rand io.Reader) (*round.Session, error) {
	c, err := newReshareConfig(cfg, rand)
	if err != nil {
		return nil, err
	}
	c.testingOnlySecret = secret
	return round.NewSession(c.sid, cfg.Self, c.all, &round1{config: c})
}
