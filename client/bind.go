package client

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// ErrNotAuthorized is returned by a SignerFn asked to sign for an address
// other than the account's (go-ethereum's bind.ErrNotAuthorized).
var ErrNotAuthorized = bind.ErrNotAuthorized

// SignerFn returns a go-ethereum bind.SignerFn that signs transactions for
// chainID through the cluster (SignTx) under ctx, for use in
// bind.TransactOpts or wherever go-ethereum takes a signer callback.
func (a *Account) SignerFn(ctx context.Context, chainID *big.Int) bind.SignerFn {
	return func(from common.Address, tx *types.Transaction) (*types.Transaction, error) {
		if from != a.addr {
			return nil, ErrNotAuthorized
		}
		return a.SignTx(ctx, tx, chainID)
	}
}

// TransactOpts returns bind.TransactOpts that send from the account and sign
// through the cluster, like bind.NewKeyedTransactor does with a local key.
// Contract bindings (bind/v2's Transact, a BoundContract) fill in nonce and
// gas from their backend.
func (a *Account) TransactOpts(ctx context.Context, chainID *big.Int) (*bind.TransactOpts, error) {
	if chainID == nil || chainID.Sign() <= 0 {
		return nil, errors.New("client: TransactOpts: a positive chain id is required")
	}
	if ctx == nil {
		return nil, fmt.Errorf("client: TransactOpts: nil context")
	}
	return &bind.TransactOpts{
		From:    a.addr,
		Signer:  a.SignerFn(ctx, new(big.Int).Set(chainID)),
		Context: ctx,
	}, nil
}
