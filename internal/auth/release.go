package auth

import (
	"bytes"
	"context"
	"encoding/hex"

	"github.com/keymesh/keymesh/internal/store"
)

// ReleaseNonces forgets the nonces Authorize recorded for op (its
// operation and request id) from the approvals in proofs, so that the
// same approval can be presented again. A nonce recorded for another
// request or operation is left as it is, as is anything proofs does not
// approve for op.
//
// The wallet's gateway calls it when it gives up on a signing request
// because the cluster is busy, before any other node could have recorded
// the nonces (wallet.signAs): the approval was used for nothing, and the
// client's retry (the SDK retries CodeBusy) must not be refused as a
// replay. It never lets a call execute twice: no other node holds the
// nonces, and this node signed nothing with them.
func (s *Service) ReleaseNonces(ctx context.Context, op Operation, proofs string) error {
	ps, err := ParseProofs(proofs)
	if err != nil {
		return err
	}
	var keys []string
	for _, p := range ps.Approvals {
		pp, err := parseProof(&p)
		if err != nil {
			return err
		}
		if a := pp.approval; a.Hash == op.Hash && a.Method == op.Method && a.Scope == op.Scope {
			keys = append(keys, a.Scope+"/"+hex.EncodeToString(a.Nonce[:]))
		}
	}
	mine := append(op.Hash[:], op.Request[:]...)
	return s.st.Update(ctx, func(tx store.Ops) error {
		for _, key := range keys {
			old, ok, err := get(ctx, tx, nsNonce, key)
			if err != nil {
				return err
			}
			if ok && len(old) >= len(mine) && bytes.Equal(old[:len(mine)], mine) {
				if err := tx.Delete(ctx, nsNonce, key); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
