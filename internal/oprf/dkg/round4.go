package dkg

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/oprf"
)

// round4 waits for every party's digest of the public key: a party outputs
// only once every other party has accepted its shares and computed the same
// public key.
type round4 struct {
	cfg    *config
	share  *oprf.KeyShare
	conf   []byte
	output bool
}

// Wipe zeroes the new share if the run ends without outputting it
// (round.Wiper).
func (r *round4) Wipe() {
	if !r.output {
		r.share.Zero()
	}
}

var _ round.Round = (*round4)(nil)

func (r *round4) Number() uint16           { return 4 }
func (r *round4) Receives() round.Receives { return round.Receives{Broadcast: true} }

func (r *round4) VerifyMessage(msg *round.Message) error {
	if !msg.IsBroadcast() {
		return errors.New("dkg: round 4 takes broadcasts only")
	}
	if subtle.ConstantTimeCompare(msg.Payload, r.conf) != 1 {
		return fmt.Errorf("dkg: %v confirms a different public key", msg.From)
	}
	return nil
}

func (r *round4) StoreMessage(*round.Message) error { return nil }

func (r *round4) Finalize() ([]*round.Message, round.Round, error) {
	r.output = true
	return nil, &round.Output{Result: r.share}, nil
}
