//go:build keymesh_adversary

package wallet

import (
	"context"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
)

// KindKeygen is the peer RPC kind (transport.Call) of a key-generation
// invitation. It exists only in builds with the keymesh_adversary tag.
const KindKeygen = kindKeygen

// EncodeKeygenInvite returns the body of a key-generation invitation
// (KindKeygen) in the wire format of wire.go, for adversarial tests that
// play a malicious gateway. It exists only in builds with the
// keymesh_adversary tag.
func EncodeKeygenInvite(scope, account, proofs string, request [16]byte, nonce [32]byte) []byte {
	inv := keygenInvite{Scope: scope, Account: account, Proofs: proofs, Request: request, Nonce: nonce}
	return inv.marshal()
}

// TestingOnlyShare returns the live share of addr this node holds (the one
// its signing sessions use and its refusals change), for a test that plays
// this node as a malicious one: a malicious node holds its own share. It
// exists only in builds with the keymesh_adversary tag.
func (s *Service) TestingOnlyShare(ctx context.Context, addr common.Address) (*dkls23.Share, error) {
	w, err := s.load(ctx, addr)
	if err != nil {
		return nil, err
	}
	return w.share, nil
}
