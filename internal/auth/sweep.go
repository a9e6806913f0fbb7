package auth

import (
	"context"
	"encoding/binary"
)

// sweepPage bounds the nonces SweepNonces holds at once (a var for tests).
var sweepPage = 512

// nonceKeyAlphabet holds every byte of a nonce key (state.go, nsNonce:
// scope id and nonce in lowercase hex, joined by '/'), in ascending order.
const nonceKeyAlphabet = "/0123456789abcdef"

// SweepNonces deletes the remembered nonces of approvals that expired
// before now (they can no longer be replayed: Authorize refuses them as
// expired). The node calls it periodically.
//
// It pages through the store, never holding more than sweepPage+1
// entries: the store lists a key prefix in key order without a cursor, so
// a prefix holding more than a page is split by its next byte, depth
// first (issue 16: the sweep loaded every nonce at once, as many as an
// attacker with a valid session could make the node remember).
func (s *Service) SweepNonces(ctx context.Context) error {
	return s.sweepNonces(ctx, "", s.now().Unix())
}

func (s *Service) sweepNonces(ctx context.Context, prefix string, now int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	es, err := s.st.List(ctx, nsNonce, prefix, sweepPage+1)
	if err != nil {
		return err
	}
	if len(es) > sweepPage {
		// Too many under prefix: the key equal to it (if any), then each
		// longer prefix on its own.
		first := es[0]
		es = nil
		if first.Key == prefix {
			if err := s.sweepNonce(ctx, first.Key, first.Value, now); err != nil {
				return err
			}
		}
		for i := range len(nonceKeyAlphabet) {
			if err := s.sweepNonces(ctx, prefix+nonceKeyAlphabet[i:i+1], now); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range es {
		if err := s.sweepNonce(ctx, e.Key, e.Value, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) sweepNonce(ctx context.Context, key string, val []byte, now int64) error {
	if len(val) == 56 && int64(binary.BigEndian.Uint64(val[48:])) < now {
		return s.st.Delete(ctx, nsNonce, key)
	}
	return nil
}
