package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// TestWireShapes pins the JSON encodings clients depend on.
func TestWireShapes(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{Request{JSONRPC: Version, Method: "m"}, `{"jsonrpc":"2.0","method":"m"}`}, // notification: no id
		{Request{JSONRPC: Version, ID: json.RawMessage(`7`), Method: "m", Params: json.RawMessage(`[]`)}, `{"jsonrpc":"2.0","id":7,"method":"m","params":[]}`},
		{Response{JSONRPC: Version, ID: json.RawMessage(`null`), Error: Errorf(CodeMethodNotFound, "method not found")},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"method not found"}}`},
		{Response{JSONRPC: Version, ID: json.RawMessage(`"a"`), Result: json.RawMessage(`null`)}, `{"jsonrpc":"2.0","id":"a","result":null}`},
		{ReadyStatus{Ready: false, Threshold: 2, Reachable: 1, Down: []uint16{2, 3}}, `{"ready":false,"threshold":2,"reachable":1,"down":[2,3]}`},
		{PeerInfo{ID: 2, Reachable: true}, `{"id":2,"reachable":true}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s (%v), want %s", c.v, b, err, c.want)
		}
	}
}

func TestErrorAs(t *testing.T) {
	err := fmt.Errorf("client: m: %w", Errorf(CodeUnavailable, "%d of %d nodes", 1, 2))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUnavailable || e.Message != "1 of 2 nodes" {
		t.Fatalf("%v", err)
	}
	if got := e.Error(); got != "api: JSON-RPC error -32002: 1 of 2 nodes" {
		t.Fatalf("Error() = %q", got)
	}
	codes := map[int]bool{}
	for _, c := range []int{CodeParseError, CodeInvalidRequest, CodeMethodNotFound, CodeInvalidParams, CodeInternalError,
		CodeInvalidInput, CodeNotFound, CodeUnavailable, CodeRejected, CodeMethodNotSupported, CodeLimitExceeded,
		CodeUserRejected, CodeUnauthorized, CodeUnsupportedMethod} {
		if codes[c] {
			t.Fatalf("code %d defined twice", c)
		}
		codes[c] = true
	}
}
