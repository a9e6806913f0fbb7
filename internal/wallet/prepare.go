package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// Prepared is a signing request parsed from a client's params: which
// address signs which digest, and for a transaction what to attach the
// signature to. Every node that takes part builds its own from the params.
type Prepared struct {
	Method  string
	Address common.Address
	Digest  [32]byte

	tx     *types.Transaction // eth_signTransaction only
	signer types.Signer
}

// Hash is the operation hash the request's approval must commit to.
func (p *Prepared) Hash() [32]byte { return api.OperationHash(p.Method, p.Address, p.Digest) }

// Prepare parses the params of a signing method (personal_sign,
// eth_signTypedData_v4, eth_signTransaction, keymesh_signDigest) and computes
// the digest to sign. chainIDs, if not empty, are the chain ids a transaction
// may name. Errors are *api.Error: CodeInvalidParams for params of the wrong
// shape or type, CodeInvalidInput for well-formed params the wallet refuses
// (a chain id not enabled, typed data that does not hash), CodeLimitExceeded
// for oversized payloads.
func Prepare(method string, params json.RawMessage, chainIDs []uint64) (*Prepared, error) {
	switch method {
	case api.MethodPersonalSign:
		return preparePersonal(params)
	case api.MethodSignTypedDataV4:
		return prepareTypedData(params)
	case api.MethodSignTransaction:
		return prepareTx(params, chainIDs)
	case api.MethodSignDigest:
		return prepareDigest(params)
	}
	return nil, api.Errorf(api.CodeMethodNotFound, "%s is not a wallet signing method", method)
}

func invalidParams(format string, args ...any) *api.Error {
	return api.Errorf(api.CodeInvalidParams, format, args...)
}

// positional decodes params as a JSON array of exactly n elements.
func positional(method string, params json.RawMessage, n int) ([]json.RawMessage, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(params, &arr); err != nil || len(arr) != n {
		return nil, invalidParams("%s takes an array of %d params", method, n)
	}
	return arr, nil
}

func stringParam(method, name string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidParams("%s: %s must be a string", method, name)
	}
	return s, nil
}

func parseAddress(method, name, s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return common.Address{}, invalidParams("%s: %s must be a 0x-prefixed 20-byte hex address", method, name)
	}
	b, err := hexutil.Decode("0x" + s[2:])
	if err != nil {
		return common.Address{}, invalidParams("%s: %s must be a 0x-prefixed 20-byte hex address", method, name)
	}
	return common.BytesToAddress(b), nil
}

func preparePersonal(params json.RawMessage) (*Prepared, error) {
	const m = api.MethodPersonalSign
	arr, err := positional(m, params, 2)
	if err != nil {
		return nil, err
	}
	data, err := stringParam(m, "data", arr[0])
	if err != nil {
		return nil, err
	}
	as, err := stringParam(m, "address", arr[1])
	if err != nil {
		return nil, err
	}
	addr, err := parseAddress(m, "address", as)
	if err != nil {
		return nil, err
	}
	var msg []byte
	if strings.HasPrefix(data, "0x") {
		if msg, err = hexutil.Decode(data); err != nil && data != "0x" {
			return nil, invalidParams("%s: data starting with 0x must be hex bytes", m)
		}
	} else {
		if !utf8.ValidString(data) {
			return nil, invalidParams("%s: data must be 0x hex or UTF-8 text", m)
		}
		msg = []byte(data)
	}
	if len(msg) > api.MaxMessageBytes {
		return nil, api.Errorf(api.CodeLimitExceeded, "%s: message of %d bytes exceeds %d", m, len(msg), api.MaxMessageBytes)
	}
	p := &Prepared{Method: m, Address: addr}
	copy(p.Digest[:], accounts.TextHash(msg))
	return p, nil
}

func prepareTypedData(params json.RawMessage) (*Prepared, error) {
	const m = api.MethodSignTypedDataV4
	arr, err := positional(m, params, 2)
	if err != nil {
		return nil, err
	}
	as, err := stringParam(m, "address", arr[0])
	if err != nil {
		return nil, err
	}
	addr, err := parseAddress(m, "address", as)
	if err != nil {
		return nil, err
	}
	raw := []byte(arr[1])
	if len(raw) > 0 && raw[0] == '"' { // a string holding the JSON, as MetaMask sends it
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidParams("%s: typed data must be a JSON object or a string holding one", m)
		}
		raw = []byte(s)
	}
	if len(raw) > api.MaxTypedDataBytes {
		return nil, api.Errorf(api.CodeLimitExceeded, "%s: typed data of %d bytes exceeds %d", m, len(raw), api.MaxTypedDataBytes)
	}
	var td apitypes.TypedData
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&td); err != nil || dec.More() {
		return nil, invalidParams("%s: typed data must be a JSON object with types, primaryType, domain and message", m)
	}
	if td.PrimaryType == "" || td.Types == nil {
		return nil, invalidParams("%s: typed data needs types and primaryType", m)
	}
	h, err := typedDataHash(td)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidInput, "%s: typed data does not hash under EIP-712: %s", m, clip(err.Error()))
	}
	p := &Prepared{Method: m, Address: addr}
	copy(p.Digest[:], h)
	return p, nil
}

// typedDataHash runs apitypes.TypedDataAndHash, turning a panic inside it
// (it has had some on hostile input) into an error.
func typedDataHash(td apitypes.TypedData) (h []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, errors.New("malformed typed data")
		}
	}()
	h, _, err = apitypes.TypedDataAndHash(td)
	if err == nil && len(h) != 32 {
		err = errors.New("bad hash length")
	}
	return h, err
}

// clip keeps client-visible error texts short.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func prepareDigest(params json.RawMessage) (*Prepared, error) {
	const m = api.MethodSignDigest
	var sp api.SignDigestParams
	if err := httpapi.DecodeParams(params, &sp); err != nil {
		return nil, err
	}
	addr, err := parseAddress(m, "address", sp.Address)
	if err != nil {
		return nil, err
	}
	d, err := hexutil.Decode(sp.Digest)
	if err != nil || len(d) != 32 {
		return nil, invalidParams("%s: digest must be 32 bytes of 0x hex", m)
	}
	p := &Prepared{Method: m, Address: addr}
	copy(p.Digest[:], d)
	return p, nil
}

func prepareTx(params json.RawMessage, chainIDs []uint64) (*Prepared, error) {
	const m = api.MethodSignTransaction
	var arr []json.RawMessage
	if err := json.Unmarshal(params, &arr); err != nil || len(arr) != 1 {
		return nil, invalidParams("%s takes an array holding one transaction object", m)
	}
	var req api.TransactionRequest
	dec := json.NewDecoder(bytes.NewReader(arr[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, invalidParams("%s: malformed transaction object: %s", m, clip(jsonErr(err)))
	}
	tx, signer, from, err := buildTx(&req, chainIDs)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Method: m, Address: from, tx: tx, signer: signer}
	p.Digest = signer.Hash(tx)
	return p, nil
}

// jsonErr describes a JSON decoding error without echoing input bytes.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s has the wrong JSON type (quantities and bytes are 0x hex strings)", te.Field)
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field") {
		return s[len("json: "):]
	}
	return "not a JSON object of the expected shape"
}

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

func buildTx(r *api.TransactionRequest, chainIDs []uint64) (*types.Transaction, types.Signer, common.Address, error) {
	const m = api.MethodSignTransaction
	var zero common.Address
	if r.From == nil {
		return nil, nil, zero, invalidParams("%s: from (the signing address) is required", m)
	}
	from, err := parseAddress(m, "from", *r.From)
	if err != nil {
		return nil, nil, zero, err
	}
	chainID, err := quantity("chainId", r.ChainID, true)
	if err != nil {
		return nil, nil, zero, err
	}
	if chainID.Sign() == 0 {
		return nil, nil, zero, api.Errorf(api.CodeInvalidInput, "%s: chainId must not be 0 (EIP-155 replay protection)", m)
	}
	if len(chainIDs) > 0 {
		ok := false
		for _, c := range chainIDs {
			ok = ok || chainID.IsUint64() && chainID.Uint64() == c
		}
		if !ok {
			return nil, nil, zero, api.Errorf(api.CodeInvalidInput, "%s: chainId %s does not match the chains this node signs for %v", m, chainID, chainIDs)
		}
	}
	var to *common.Address
	if r.To != nil {
		a, err := parseAddress(m, "to", *r.To)
		if err != nil {
			return nil, nil, zero, err
		}
		to = &a
	}
	nonceBig, err := quantity("nonce", r.Nonce, true)
	if err != nil {
		return nil, nil, zero, err
	}
	gasBig, err := quantity("gas", r.Gas, true)
	if err != nil {
		return nil, nil, zero, err
	}
	if !nonceBig.IsUint64() || !gasBig.IsUint64() {
		return nil, nil, zero, invalidParams("%s: nonce and gas must fit in 64 bits", m)
	}
	value, err := quantity("value", r.Value, false)
	if err != nil {
		return nil, nil, zero, err
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
			return nil, nil, zero, invalidParams("%s: data/input must be 0x hex bytes", m)
		}
		if data != nil && !bytes.Equal(b, data) {
			return nil, nil, zero, invalidParams("%s: data and input differ", m)
		}
		if b == nil {
			b = []byte{}
		}
		data = b
	}
	if len(data) > api.MaxTxDataBytes {
		return nil, nil, zero, api.Errorf(api.CodeLimitExceeded, "%s: data of %d bytes exceeds %d", m, len(data), api.MaxTxDataBytes)
	}
	var al types.AccessList
	items := 0
	for i, t := range r.AccessList {
		a, err := parseAddress(m, fmt.Sprintf("accessList[%d].address", i), t.Address)
		if err != nil {
			return nil, nil, zero, err
		}
		items += 1 + len(t.StorageKeys)
		if items > api.MaxAccessListItems {
			return nil, nil, zero, api.Errorf(api.CodeLimitExceeded, "%s: access list exceeds %d entries", m, api.MaxAccessListItems)
		}
		tuple := types.AccessTuple{Address: a, StorageKeys: make([]common.Hash, len(t.StorageKeys))}
		for j, k := range t.StorageKeys {
			b, err := hexutil.Decode(k)
			if err != nil || len(b) != 32 {
				return nil, nil, zero, invalidParams("%s: accessList[%d].storageKeys[%d] must be 32 bytes of 0x hex", m, i, j)
			}
			tuple.StorageKeys[j] = common.BytesToHash(b)
		}
		al = append(al, tuple)
	}
	gasPrice, err := quantity("gasPrice", r.GasPrice, false)
	if err != nil {
		return nil, nil, zero, err
	}
	maxFee, err := quantity("maxFeePerGas", r.MaxFeePerGas, false)
	if err != nil {
		return nil, nil, zero, err
	}
	maxTip, err := quantity("maxPriorityFeePerGas", r.MaxPriorityFeePerGas, false)
	if err != nil {
		return nil, nil, zero, err
	}
	typ := uint64(types.LegacyTxType)
	switch {
	case r.Type != nil:
		if typ, err = hexutil.DecodeUint64(*r.Type); err != nil {
			return nil, nil, zero, invalidParams("%s: type must be a 0x hex quantity", m)
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
			return nil, nil, zero, invalidParams("%s: gasPrice is required for a type %d transaction", m, typ)
		}
		if maxFee != nil || maxTip != nil {
			return nil, nil, zero, invalidParams("%s: maxFeePerGas and maxPriorityFeePerGas belong to EIP-1559 (type 0x2) transactions", m)
		}
		if typ == types.LegacyTxType {
			if r.AccessList != nil {
				return nil, nil, zero, invalidParams("%s: a legacy transaction has no access list", m)
			}
			inner = &types.LegacyTx{Nonce: nonce, GasPrice: gasPrice, Gas: gas, To: to, Value: value, Data: data}
		} else {
			inner = &types.AccessListTx{ChainID: chainID, Nonce: nonce, GasPrice: gasPrice, Gas: gas, To: to, Value: value, Data: data, AccessList: al}
		}
	case types.DynamicFeeTxType:
		if gasPrice != nil {
			return nil, nil, zero, invalidParams("%s: an EIP-1559 transaction takes maxFeePerGas and maxPriorityFeePerGas, not gasPrice", m)
		}
		if maxFee == nil || maxTip == nil {
			return nil, nil, zero, invalidParams("%s: maxFeePerGas and maxPriorityFeePerGas are required for an EIP-1559 transaction", m)
		}
		if maxTip.Cmp(maxFee) > 0 {
			return nil, nil, zero, api.Errorf(api.CodeInvalidInput, "%s: maxPriorityFeePerGas exceeds maxFeePerGas", m)
		}
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: maxTip, GasFeeCap: maxFee, Gas: gas, To: to, Value: value, Data: data, AccessList: al}
	default:
		return nil, nil, zero, api.Errorf(api.CodeInvalidInput, "%s: transaction type %d is not supported (0x0 legacy, 0x1 EIP-2930, 0x2 EIP-1559)", m, typ)
	}
	return types.NewTx(inner), types.LatestSignerForChainID(chainID), from, nil
}

// result turns the threshold signature sig (r ‖ s ‖ v, v ∈ {0, 1}) into the
// method's JSON-RPC result.
func (p *Prepared) result(sig []byte) (any, error) {
	switch p.Method {
	case api.MethodSignTransaction:
		signed, err := p.tx.WithSignature(p.signer, sig)
		if err != nil {
			return nil, fmt.Errorf("wallet: attach signature: %w", err)
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("wallet: encode signed tx: %w", err)
		}
		return hexutil.Encode(raw), nil
	case api.MethodSignDigest:
		return api.SignatureResult{Signature: hexutil.Encode(legacyV(sig))}, nil
	default:
		return hexutil.Encode(legacyV(sig)), nil
	}
}

// legacyV returns sig with v + 27, the form personal_sign and EIP-712
// signatures take (ecrecover's v).
func legacyV(sig []byte) []byte {
	out := bytes.Clone(sig)
	out[64] += 27
	return out
}
