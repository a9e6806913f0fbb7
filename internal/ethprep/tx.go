package ethprep

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keymesh/keymesh/api"
)

// Tx is a transaction request prepared for signing.
type Tx struct {
	Tx      *types.Transaction // unsigned
	ChainID *big.Int           // the request's chainId, never 0
	Signer  types.Signer       // types.LatestSignerForChainID(ChainID)
	// From is the request's from (the signing address), nil when absent.
	From *common.Address
}

// Digest is the transaction's signing hash: keccak256 of the EIP-155
// payload for legacy transactions, of type ‖ rlp(payload) for EIP-2930
// and EIP-1559 ones.
func (t *Tx) Digest() [32]byte { return t.Signer.Hash(t.Tx) }

// quantity decodes a 0x hex quantity below 2^256 without leading zeros.
func quantity(name string, s *string, required bool) (*big.Int, error) {
	if s == nil {
		if required {
			return nil, invalidParams("%s: %s is required", api.MethodSignTransaction, name)
		}
		return nil, nil
	}
	v, err := hexutil.DecodeBig(*s)
	if err != nil {
		return nil, invalidParams("%s: %s must be a 0x hex quantity below 2^256 without leading zeros", api.MethodSignTransaction, name)
	}
	return v, nil
}

// BuildTx builds the unsigned transaction r describes. chainIDs, if not
// empty, are the only chain ids r may name (a node's configured chains;
// the SDK passes none). The envelope is r.Type's, or without a type
// EIP-1559 when a fee cap or tip is given, EIP-2930 when an access list
// is, else legacy. Every field but to, value, data/input, accessList and
// from is required; from, when given, is parsed into Tx.From.
func BuildTx(r *api.TransactionRequest, chainIDs []uint64) (*Tx, error) {
	const m = api.MethodSignTransaction
	var from *common.Address
	if r.From != nil {
		a, err := ParseAddress(m, "from", *r.From)
		if err != nil {
			return nil, err
		}
		from = &a
	}
	chainID, err := quantity("chainId", r.ChainID, true)
	if err != nil {
		return nil, err
	}
	if chainID.Sign() == 0 { // EIP-155: the chain id goes into the signature
		return nil, api.Errorf(api.CodeInvalidInput, "%s: chainId must not be 0 (EIP-155 replay protection)", m)
	}
	if len(chainIDs) > 0 {
		ok := false
		for _, c := range chainIDs {
			ok = ok || chainID.IsUint64() && chainID.Uint64() == c
		}
		if !ok {
			return nil, api.Errorf(api.CodeInvalidInput, "%s: chainId %s does not match the chains this node signs for %v", m, chainID, chainIDs)
		}
	}
	var to *common.Address
	if r.To != nil {
		a, err := ParseAddress(m, "to", *r.To)
		if err != nil {
			return nil, err
		}
		to = &a
	}
	nonceBig, err := quantity("nonce", r.Nonce, true)
	if err != nil {
		return nil, err
	}
	gasBig, err := quantity("gas", r.Gas, true)
	if err != nil {
		return nil, err
	}
	if !nonceBig.IsUint64() || !gasBig.IsUint64() {
		return nil, invalidParams("%s: nonce and gas must fit in 64 bits", m)
	}
	value, err := quantity("value", r.Value, false)
	if err != nil {
		return nil, err
	}
	if value == nil {
		value = new(big.Int)
	}
	var data []byte
	for _, d := range []*string{r.Data, r.Input} {
		if d == nil {
			continue
		}
		b, err := hexutil.Decode(*d)
		if err != nil && *d != "0x" {
			return nil, invalidParams("%s: data/input must be 0x hex bytes", m)
		}
		if data != nil && !bytes.Equal(b, data) {
			return nil, invalidParams("%s: data and input differ", m)
		}
		if b == nil {
			b = []byte{}
		}
		data = b
	}
	if len(data) > api.MaxTxDataBytes {
		return nil, api.Errorf(api.CodeLimitExceeded, "%s: data of %d bytes exceeds %d", m, len(data), api.MaxTxDataBytes)
	}
	// EIP-2930 "Parameters": accessList is a list of [address, storageKeys].
	var al types.AccessList
	items := 0
	for i, t := range r.AccessList {
		a, err := ParseAddress(m, fmt.Sprintf("accessList[%d].address", i), t.Address)
		if err != nil {
			return nil, err
		}
		items += 1 + len(t.StorageKeys)
		if items > api.MaxAccessListItems {
			return nil, api.Errorf(api.CodeLimitExceeded, "%s: access list exceeds %d entries", m, api.MaxAccessListItems)
		}
		tuple := types.AccessTuple{Address: a, StorageKeys: make([]common.Hash, len(t.StorageKeys))}
		for j, k := range t.StorageKeys {
			b, err := hexutil.Decode(k)
			if err != nil || len(b) != 32 {
				return nil, invalidParams("%s: accessList[%d].storageKeys[%d] must be 32 bytes of 0x hex", m, i, j)
			}
			tuple.StorageKeys[j] = common.BytesToHash(b)
		}
		al = append(al, tuple)
	}
	gasPrice, err := quantity("gasPrice", r.GasPrice, false)
	if err != nil {
		return nil, err
	}
	maxFee, err := quantity("maxFeePerGas", r.MaxFeePerGas, false)
	if err != nil {
		return nil, err
	}
	maxTip, err := quantity("maxPriorityFeePerGas", r.MaxPriorityFeePerGas, false)
	if err != nil {
		return nil, err
	}
	typ := uint64(types.LegacyTxType)
	switch {
	case r.Type != nil:
		if typ, err = hexutil.DecodeUint64(*r.Type); err != nil {
			return nil, invalidParams("%s: type must be a 0x hex quantity", m)
		}
	case maxFee != nil || maxTip != nil:
		typ = types.DynamicFeeTxType
	case r.AccessList != nil:
		typ = types.AccessListTxType
	}
	nonce, gas := nonceBig.Uint64(), gasBig.Uint64()
	var inner types.TxData
	switch typ {
	case types.LegacyTxType, types.AccessListTxType:
		if gasPrice == nil {
			return nil, invalidParams("%s: gasPrice is required for a type %d transaction", m, typ)
		}
		if maxFee != nil || maxTip != nil {
			return nil, invalidParams("%s: maxFeePerGas and maxPriorityFeePerGas belong to EIP-1559 (type 0x2) transactions", m)
		}
		if typ == types.LegacyTxType {
			if r.AccessList != nil {
				return nil, invalidParams("%s: a legacy transaction has no access list", m)
			}
			inner = &types.LegacyTx{Nonce: nonce, GasPrice: gasPrice, Gas: gas, To: to, Value: value, Data: data}
		} else {
			inner = &types.AccessListTx{ChainID: chainID, Nonce: nonce, GasPrice: gasPrice, Gas: gas, To: to, Value: value, Data: data, AccessList: al}
		}
	case types.DynamicFeeTxType:
		if gasPrice != nil {
			return nil, invalidParams("%s: an EIP-1559 transaction takes maxFeePerGas and maxPriorityFeePerGas, not gasPrice", m)
		}
		if maxFee == nil || maxTip == nil {
			return nil, invalidParams("%s: maxFeePerGas and maxPriorityFeePerGas are required for an EIP-1559 transaction", m)
		}
		// EIP-1559 "Specification": a block is invalid with a transaction
		// whose max_priority_fee_per_gas exceeds its max_fee_per_gas.
		if maxTip.Cmp(maxFee) > 0 {
			return nil, api.Errorf(api.CodeInvalidInput, "%s: maxPriorityFeePerGas exceeds maxFeePerGas", m)
		}
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: maxTip, GasFeeCap: maxFee, Gas: gas, To: to, Value: value, Data: data, AccessList: al}
	default:
		return nil, api.Errorf(api.CodeInvalidInput, "%s: transaction type %d is not supported (0x0 legacy, 0x1 EIP-2930, 0x2 EIP-1559)", m, typ)
	}
	return &Tx{Tx: types.NewTx(inner), ChainID: chainID, Signer: types.LatestSignerForChainID(chainID), From: from}, nil
}

// TxRequest is BuildTx's inverse: the request object of tx from from, for
// chainID: legacy (type 0x0, EIP-155), EIP-2930 (0x1) or EIP-1559 (0x2). A
// typed transaction's own chain id must be chainID or unset (zero; as
// go-ethereum's bind builds them: the signer fills it in). The request
// names its type, and keeps an empty access list present so that BuildTx
// gives back the same envelope.
func TxRequest(from common.Address, tx *types.Transaction, chainID *big.Int) (api.TransactionRequest, error) {
	const m = api.MethodSignTransaction
	var r api.TransactionRequest
	if chainID == nil || chainID.Sign() <= 0 {
		return r, api.Errorf(api.CodeInvalidParams, "%s: a positive chain id is required (EIP-155)", m)
	}
	hx := func(v *big.Int) *string {
		if v == nil {
			v = new(big.Int)
		}
		s := hexutil.EncodeBig(v)
		return &s
	}
	u64 := func(v uint64) *string { s := hexutil.EncodeUint64(v); return &s }
	str := func(s string) *string { return &s }
	switch tx.Type() {
	case types.LegacyTxType:
		r.GasPrice = hx(tx.GasPrice())
	case types.AccessListTxType:
		r.GasPrice = hx(tx.GasPrice())
		r.AccessList = accessList(tx.AccessList())
	case types.DynamicFeeTxType:
		r.MaxFeePerGas = hx(tx.GasFeeCap())
		r.MaxPriorityFeePerGas = hx(tx.GasTipCap())
		r.AccessList = accessList(tx.AccessList())
	default:
		return r, api.Errorf(api.CodeInvalidInput, "%s: transaction type %d is not supported (0x0 legacy, 0x1 EIP-2930, 0x2 EIP-1559)", m, tx.Type())
	}
	if tx.Type() != types.LegacyTxType && tx.ChainId().Sign() != 0 && tx.ChainId().Cmp(chainID) != 0 {
		return r, api.Errorf(api.CodeInvalidInput, "%s: the transaction's chain id %s is not %s", m, tx.ChainId(), chainID)
	}
	r.Type = u64(uint64(tx.Type()))
	r.ChainID = hx(chainID)
	r.From = str(from.Hex())
	if to := tx.To(); to != nil {
		r.To = str(to.Hex())
	}
	r.Nonce = u64(tx.Nonce())
	r.Gas = u64(tx.Gas())
	r.Value = hx(tx.Value())
	r.Data = str(hexutil.Encode(tx.Data()))
	return r, nil
}

// accessList converts an access list to its request form; an empty list
// stays present (not nil) so that the request keeps the transaction's type.
func accessList(al types.AccessList) []api.AccessTuple {
	out := make([]api.AccessTuple, len(al))
	for i, t := range al {
		keys := make([]string, len(t.StorageKeys))
		for j, k := range t.StorageKeys {
			keys[j] = k.Hex()
		}
		out[i] = api.AccessTuple{Address: t.Address.Hex(), StorageKeys: keys}
	}
	return out
}
