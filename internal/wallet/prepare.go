package wallet

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/ethprep"
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
	return ethprep.ParseAddress(method, name, s)
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
	msg, err := ethprep.PersonalMessage(data)
	if err != nil {
		return nil, err
	}
	d, err := ethprep.PersonalDigest(msg)
	if err != nil {
		return nil, err
	}
	return &Prepared{Method: m, Address: addr, Digest: d}, nil
}

// prepareTypedData: the typed data is decoded and hashed by package
// ethprep, the SDK's rules too.
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
	d, err := ethprep.TypedDataHash(arr[1])
	if err != nil {
		return nil, err
	}
	return &Prepared{Method: m, Address: addr, Digest: d}, nil
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

// prepareTx: the transaction object is decoded and built by package
// ethprep, the SDK's rules too; the node adds that from is required and
// that the chain is one it signs for.
func prepareTx(params json.RawMessage, chainIDs []uint64) (*Prepared, error) {
	const m = api.MethodSignTransaction
	var arr []json.RawMessage
	if err := json.Unmarshal(params, &arr); err != nil || len(arr) != 1 {
		return nil, invalidParams("%s takes an array holding one transaction object", m)
	}
	req, err := ethprep.DecodeTxRequest(arr[0])
	if err != nil {
		return nil, err
	}
	if req.From == nil {
		return nil, invalidParams("%s: from (the signing address) is required", m)
	}
	t, err := ethprep.BuildTx(req, chainIDs)
	if err != nil {
		return nil, err
	}
	return &Prepared{Method: m, Address: *t.From, Digest: t.Digest(), tx: t.Tx, signer: t.Signer}, nil
}

// clip keeps client-visible error texts short.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
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
