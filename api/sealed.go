package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Error codes of sealed requests (docs/enclave.md, package envelope): a
// request the node could not open is answered in plaintext with one of
// these, each naming one reason, and changes nothing on the node.
const (
	CodeSealedMalformed  = -32050 // the envelope does not parse
	CodeSealedUnknownKey = -32051 // sealed to a key this node does not hold
	CodeSealedHeader     = -32052 // the authenticated header (AAD: method, scope, time, nonce) was altered
	CodeSealedCiphertext = -32053 // the ciphertext was altered
	CodeSealedExpired    = -32054 // the timestamp is outside the node's window
	CodeSealedReplay     = -32055 // the request was seen before
	CodeSealedBinding    = -32056 // sealed for another JSON-RPC method or scope
	CodePlaintextRefused = -32057 // an unsealed request to a node that accepts only sealed ones
)

// MethodAttestation returns the node's attestation document
// (AttestationDocument); also served at GET /attestation.
const MethodAttestation = "keymesh_attestation"

// Sealed calls: the plaintexts inside sealed requests and responses
// (docs/enclave.md; the envelopes themselves are package
// internal/envelope's). A client seals the whole JSON-RPC body, with its
// approval proofs, to the node's attested enclave keys:
//
//   - HPKE mode: Content-Type application/keymesh-sealed, the body is an
//     envelope whose sealed payload is a SealedCall in JSON; the response
//     is a SealedReply in JSON (the HTTP status and the JSON-RPC response),
//     same content type.
//   - compatibility mode (Passport's format): an X-Encrypted-Key header and
//     a JSON object of sealed string fields: CompatFieldRPC (the JSON-RPC
//     body) and, if any, CompatFieldAuth (the proofs); the response is a
//     JSON object with the sealed fields CompatFieldRPC and
//     CompatFieldStatus (plus the envelope's meta field).
//
// The envelope's method binding is SealedMethod of the JSON-RPC body.

// SealedCall is the plaintext inside an HPKE-sealed request: the JSON-RPC
// body and the X-Keymesh-Auth proofs that would otherwise travel in the
// clear.
type SealedCall struct {
	RPC  json.RawMessage `json:"rpc"`
	Auth string          `json:"auth,omitempty"`
}

// Compatibility-mode field names.
const (
	CompatFieldRPC    = "rpc"
	CompatFieldAuth   = "auth"
	CompatFieldStatus = "status" // response only: the HTTP status, decimal
)

// EncodeSealedCall returns the JSON encoding of c.
func EncodeSealedCall(c SealedCall) ([]byte, error) {
	if len(c.RPC) == 0 {
		return nil, errors.New("api: sealed call without a JSON-RPC body")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("api: sealed call: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeSealedCall decodes a SealedCall strictly: one JSON object with a
// non-empty "rpc" and an optional string "auth" (names matched exactly), no
// other members, no duplicates and nothing after it.
func DecodeSealedCall(b []byte) (SealedCall, error) {
	var c SealedCall
	err := decodeStrictObject(b, map[string]any{"rpc": &c.RPC, "auth": &c.Auth})
	if err == nil && (len(c.RPC) == 0 || string(c.RPC) == "null") {
		err = errors.New("no JSON-RPC body")
	}
	if err != nil {
		return SealedCall{}, fmt.Errorf("api: sealed call: %w", err)
	}
	return c, nil
}

// decodeStrictObject decodes b as one JSON object whose members are named
// exactly by the keys of members, each decoded into its value (a pointer):
// an unknown or repeated member, or anything after the object, is an error.
func decodeStrictObject(b []byte, members map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("duplicate member %q", name)
		}
		seen[name] = true
		dst, ok := members[name]
		if !ok {
			return fmt.Errorf("unknown member %q", name)
		}
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// SealedMethod is the method a sealed request binds (envelope.Request.Method):
// the JSON-RPC method of a single request, or the methods of a batch joined
// by commas. A body that is not a JSON-RPC request or batch gives "", and
// so does a batch of more than MaxBatch requests, which is not read past its
// request MaxBatch+1 (the node refuses it anyway, and must not parse a
// batch of 500,000 elements to name its methods).
func SealedMethod(rpc []byte) string {
	type m struct {
		Method string `json:"method"`
	}
	rpc = bytes.TrimLeft(rpc, " \t\r\n")
	if len(rpc) > 0 && rpc[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(rpc))
		dec.Token() // the '['
		var names []string
		for dec.More() {
			var x m
			if len(names) == MaxBatch || dec.Decode(&x) != nil {
				return ""
			}
			names = append(names, x.Method)
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
			return ""
		}
		if _, err := dec.Token(); err != io.EOF {
			return ""
		}
		return strings.Join(names, ",")
	}
	var x m
	if json.Unmarshal(rpc, &x) != nil {
		return ""
	}
	return x.Method
}

// SealedReply is the plaintext of a sealed response: the HTTP status the
// node answered with and its JSON-RPC response (empty for notifications).
// The status is inside so that one changed on the path is detected: a client
// compares it with the status it received and trusts only the sealed one.
// In HPKE mode it is the JSON object {"status": 200, "rpc": …}; in
// compatibility mode the sealed fields "status" (decimal) and "rpc".
type SealedReply struct {
	Status int             `json:"status"`
	RPC    json.RawMessage `json:"rpc,omitempty"`
}

// EncodeSealedReply returns the JSON encoding of r.
func EncodeSealedReply(r SealedReply) ([]byte, error) {
	if r.Status < 100 || r.Status > 599 {
		return nil, fmt.Errorf("api: sealed reply: status %d", r.Status)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the JSON-RPC response as the handler wrote it
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("api: sealed reply: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeSealedReply decodes an HPKE sealed response's plaintext strictly:
// one JSON object with an HTTP status (100–599) and an optional "rpc", no
// other members, no duplicates and nothing after it.
func DecodeSealedReply(b []byte) (SealedReply, error) {
	var r SealedReply
	err := decodeStrictObject(b, map[string]any{"status": &r.Status, "rpc": &r.RPC})
	if err == nil && (r.Status < 100 || r.Status > 599) {
		err = fmt.Errorf("status %d", r.Status)
	}
	if err != nil {
		return SealedReply{}, fmt.Errorf("api: sealed reply: %w", err)
	}
	return r, nil
}

// ParseCompatStatus decodes the sealed "status" field of a
// compatibility-mode response.
func ParseCompatStatus(b []byte) (int, error) {
	st, err := strconv.Atoi(string(b))
	if err != nil || st < 100 || st > 599 || strconv.Itoa(st) != string(b) {
		return 0, fmt.Errorf("api: sealed reply: bad status field")
	}
	return st, nil
}
