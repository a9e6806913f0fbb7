package keygen

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// round4 checks that every party computed the same public result, then
// outputs.
type round4 struct {
	*round3
	digest []byte
	pk     secp256k1.JacobianPoint
	shares []secp256k1.JacobianPoint
	share  *dkls23.Share
	output bool // Finalize returned the share
}

// Wipe zeroes the run's secrets (round.Wiper): the transient ones always,
// and the new share too unless it was output.
func (r *round4) Wipe() {
	r.wipeTransient()
	if !r.output {
		r.round3.Wipe()
		if r.share != nil {
			r.share.Zero()
		}
	}
}

var _ round.Round = (*round4)(nil)

func (r *round4) Number() uint16           { return 4 }
func (r *round4) Receives() round.Receives { return round.Receives{Broadcast: true, Direct: true} }

func (r *round4) VerifyMessage(m *round.Message) error {
	if !m.IsBroadcast() {
		if r.share == nil || !r.isReceiver(m.From) {
			if len(m.Payload) != 0 {
				return errors.New("keygen: unexpected direct payload")
			}
			return nil
		}
		want := r.seedTag(m.From, r.self, r.share.Peer(m.From).Seed())
		if subtle.ConstantTimeCompare(m.Payload, want) != 1 {
			return errors.New("keygen: zero-sharing seed confirmation differs from ours")
		}
		return nil
	}
	if subtle.ConstantTimeCompare(m.Payload, r.digest) != 1 {
		return errors.New("keygen: result digest differs from ours")
	}
	return nil
}

func (r *round4) StoreMessage(*round.Message) error { return nil }

// Finalize outputs the new share, or Departed. A new share keeps every
// refusal of this party's old share (dkls23.Share.Refuse) made up to now
// whose peer is still in the new set; a refusal made later, while the
// caller swaps shares, must be carried over by the caller.
func (r *round4) Finalize() ([]*round.Message, round.Round, error) {
	if r.share != nil {
		if r.old != nil {
			for _, p := range r.old.RefusedPeers() {
				if r.share.Peer(p) != nil {
					if err := r.share.Refuse(p); err != nil {
						return nil, nil, fmt.Errorf("keygen: %w", err)
					}
				}
			}
		}
		r.output = true
		return nil, &round.Output{Result: r.share}, nil
	}
	r.output = true
	return nil, &round.Output{Result: &Departed{PublicKey: curve.EncodePoint(&r.pk)}}, nil
}
