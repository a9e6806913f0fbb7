package ethprep

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keymesh/keymesh/api"
)

func invalidParams(format string, args ...any) *api.Error {
	return api.Errorf(api.CodeInvalidParams, format, args...)
}

// ParseAddress parses a 0x-prefixed 20-byte hex address (any case; the
// EIP-55 checksum is not required) for method's field name.
func ParseAddress(method, name, s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return common.Address{}, invalidParams("%s: %s must be a 0x-prefixed 20-byte hex address", method, name)
	}
	b, err := hexutil.Decode("0x" + s[2:])
	if err != nil {
		return common.Address{}, invalidParams("%s: %s must be a 0x-prefixed 20-byte hex address", method, name)
	}
	return common.BytesToAddress(b), nil
}

// PersonalMessage decodes personal_sign's data param: 0x-prefixed hex
// bytes, or (as MetaMask accepts) UTF-8 text that does not start with 0x.
func PersonalMessage(data string) ([]byte, error) {
	const m = api.MethodPersonalSign
	var msg []byte
	if strings.HasPrefix(data, "0x") {
		var err error
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
	return msg, nil
}

// PersonalDigest is the EIP-191 (version 0x45) digest personal_sign signs:
// keccak256("\x19Ethereum Signed Message:\n" ‖ decimal len(msg) ‖ msg).
// Messages over api.MaxMessageBytes are refused.
func PersonalDigest(msg []byte) (digest [32]byte, err error) {
	if len(msg) > api.MaxMessageBytes {
		return digest, api.Errorf(api.CodeLimitExceeded, "%s: message of %d bytes exceeds %d", api.MethodPersonalSign, len(msg), api.MaxMessageBytes)
	}
	copy(digest[:], accounts.TextHash(msg))
	return digest, nil
}

// The shapes of the JSON values decoded here (see checkShape).
var (
	typedDataShape = shapeOf(reflect.TypeFor[apitypes.TypedData]())
	txRequestShape = shapeOf(reflect.TypeFor[api.TransactionRequest]())
)

// decodeStrict decodes raw, one JSON value and nothing after it, of shape
// s, into v: a member v has no field for, a member name that differs from
// its field's in case, and a member given twice are refused.
func decodeStrict(raw []byte, s *shape, v any) error {
	if err := checkShape(raw, s); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// DecodeTypedData decodes eth_signTypedData_v4's typed data: a JSON object
// with types, primaryType, domain and message, or a JSON string holding one
// (as MetaMask sends it). It is strict: a member EIP-712's JSON schema does
// not name, trailing data, or a missing types or primaryType is refused, as
// is typed data over api.MaxTypedDataBytes.
func DecodeTypedData(raw []byte) (*apitypes.TypedData, error) {
	const m = api.MethodSignTypedDataV4
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '"' {
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
	if err := decodeStrict(raw, typedDataShape, &td); err != nil {
		return nil, invalidParams("%s: typed data must be a JSON object with types, primaryType, domain and message: %s", m, clip(jsonErr(err)))
	}
	if td.PrimaryType == "" || td.Types == nil {
		return nil, invalidParams("%s: typed data needs types and primaryType", m)
	}
	return &td, nil
}

// TypedDataHash is the EIP-712 digest of typed data in JSON (see
// DecodeTypedData for what is accepted): keccak256("\x19\x01" ‖
// domainSeparator ‖ hashStruct(message)), by go-ethereum's apitypes.
func TypedDataHash(raw []byte) (digest [32]byte, err error) {
	td, err := DecodeTypedData(raw)
	if err != nil {
		return digest, err
	}
	h, err := typedDataHash(td)
	if err != nil {
		return digest, api.Errorf(api.CodeInvalidInput, "%s: typed data does not hash under EIP-712: %s", api.MethodSignTypedDataV4, clip(err.Error()))
	}
	copy(digest[:], h)
	return digest, nil
}

// typedDataHash runs apitypes.TypedDataAndHash, turning a panic inside it
// (it has had some on hostile input) into an error.
func typedDataHash(td *apitypes.TypedData) (h []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, errors.New("malformed typed data")
		}
	}()
	h, _, err = apitypes.TypedDataAndHash(*td)
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

// DecodeTxRequest decodes eth_signTransaction's transaction object strictly:
// one JSON object, no member api.TransactionRequest does not name, nothing
// after it. It checks the shape only; BuildTx checks the values.
func DecodeTxRequest(raw []byte) (*api.TransactionRequest, error) {
	var r api.TransactionRequest
	if err := decodeStrict(raw, txRequestShape, &r); err != nil {
		return nil, invalidParams("%s: malformed transaction object: %s", api.MethodSignTransaction, clip(jsonErr(err)))
	}
	return &r, nil
}

// jsonErr describes a JSON decoding error without echoing input bytes.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s has the wrong JSON type (quantities and bytes are 0x hex strings)", te.Field)
	}
	var se shapeError
	if errors.As(err, &se) {
		return se.Error()
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field") {
		return s[len("json: "):]
	}
	return "not a JSON object of the expected shape"
}
