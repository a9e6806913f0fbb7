package api

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The demo counter service (internal/counter), the smallest service on the
// node's seam, which docs/services.md walks through. It runs only on nodes
// started with node.Options.Demo (tests); other nodes answer its methods
// with CodeMethodNotFound.
//
//	keymesh_counterAdd  SignedRecord (a counter.add record)  → CounterValue (this node's value after it)
//	keymesh_counterGet  CounterGetParams                     → CounterValue (this node's value and its peers')
//
// A counter.add record (kind RecordKindCounterAdd) adds Delta to a named
// counter; its body is CounterAdd.Marshal and any key may sign it
// (record.AuthSignature). Every node checks it itself: the signature, the
// body's encoding, the name and 1 ≤ Delta ≤ MaxCounterDelta. The same body
// counts once, however often or by whomever it is signed.
const (
	MethodCounterAdd = "keymesh_counterAdd"
	MethodCounterGet = "keymesh_counterGet"

	// PeerCounterGet is the counter's peer RPC kind: the body is a
	// counter's name, the answer its value on the peer, 8 bytes
	// big-endian.
	PeerCounterGet = "counter/get/v1"

	// RecordKindCounterAdd is the record kind of a counter.add
	// (record.Kind(RecordKindCounterAdd)), in the range for demos.
	RecordKindCounterAdd = 200

	MaxCounterName  = 32  // bytes of a counter's name
	MaxCounterDelta = 100 // the most one record adds
)

// CounterGetParams are keymesh_counterGet's params.
type CounterGetParams struct {
	Counter string `json:"counter"`
}

// CounterValue is a counter's value on the answering node and, for
// keymesh_counterGet, what each of its peers says (untrusted: a peer may
// lie about its own state, never about the answering node's).
type CounterValue struct {
	Counter string      `json:"counter"`
	Value   uint64      `json:"value"`
	Peers   []PeerCount `json:"peers,omitempty"`
}

// PeerCount is one peer's answer to PeerCounterGet: its value, or why it
// gave none.
type PeerCount struct {
	Node  uint16 `json:"node"`
	Value uint64 `json:"value"`
	Error string `json:"error,omitempty"`
}

// ErrCounterBody is wrapped by every error of DecodeCounterAdd and
// CheckCounterName.
var ErrCounterBody = errors.New("api: malformed counter.add")

// CounterAdd is the body of a counter.add record. Nonce makes two adds of
// the same Delta two records.
type CounterAdd struct {
	Counter string
	Delta   uint32
	Nonce   [16]byte
}

// CheckCounterName reports whether s can name a counter: 1 to
// MaxCounterName of a-z, 0-9 and '-', starting with a letter.
func CheckCounterName(s string) error {
	if !isLowerWord(s, MaxCounterName, true) {
		return fmt.Errorf("%w: counter name must be 1 to %d of a-z 0-9 -, starting with a letter", ErrCounterBody, MaxCounterName)
	}
	return nil
}

// Marshal returns the body's canonical encoding:
// len(Counter)(1) ‖ Counter ‖ Delta(4, big-endian) ‖ Nonce(16).
func (b *CounterAdd) Marshal() []byte {
	out := make([]byte, 0, 1+len(b.Counter)+4+16)
	out = append(out, byte(len(b.Counter)))
	out = append(out, b.Counter...)
	out = binary.BigEndian.AppendUint32(out, b.Delta)
	return append(out, b.Nonce[:]...)
}

// DecodeCounterAdd decodes Marshal's output strictly: a bad name, a Delta
// outside 1..MaxCounterDelta, a short body and trailing bytes are errors
// wrapping ErrCounterBody.
func DecodeCounterAdd(p []byte) (*CounterAdd, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrCounterBody)
	}
	n := int(p[0])
	if len(p) != 1+n+4+16 {
		return nil, fmt.Errorf("%w: %d bytes, want %d for a %d-byte name", ErrCounterBody, len(p), 1+n+4+16, n)
	}
	b := &CounterAdd{Counter: string(p[1 : 1+n]), Delta: binary.BigEndian.Uint32(p[1+n:])}
	copy(b.Nonce[:], p[1+n+4:])
	if err := CheckCounterName(b.Counter); err != nil {
		return nil, err
	}
	if b.Delta < 1 || b.Delta > MaxCounterDelta {
		return nil, fmt.Errorf("%w: delta %d, want 1 to %d", ErrCounterBody, b.Delta, MaxCounterDelta)
	}
	return b, nil
}
