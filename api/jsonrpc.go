package api

import (
	"encoding/json"
	"fmt"
)

// Version is the only accepted value of the "jsonrpc" member.
const Version = "2.0"

// Limits of the JSON-RPC endpoint.
const (
	MaxBodyBytes = 1 << 20 // request body limit; larger gets HTTP 413
	MaxBatch     = 100     // requests in one batch; more gets CodeLimitExceeded
)

// JSON-RPC 2.0 error codes (specification section 5.1).
const (
	CodeParseError     = -32700 // the body is not valid JSON
	CodeInvalidRequest = -32600 // valid JSON, but not a valid request object
	CodeMethodNotFound = -32601 // no such method
	CodeInvalidParams  = -32602 // the method exists; its params are wrong
	CodeInternalError  = -32603 // the node failed; the cause is in its log
)

// keymesh error codes, with the meanings of EIP-1474 and EIP-1193.
const (
	CodeInvalidInput       = -32000 // well-formed params that the operation refuses
	CodeNotFound           = -32001 // the account, scope, record… does not exist
	CodeUnavailable        = -32002 // not enough nodes reachable to serve the request now
	CodeRejected           = -32003 // the operation was refused (e.g. authorization failed)
	CodeMethodNotSupported = -32004 // the method exists but this node does not offer it
	CodeLimitExceeded      = -32005 // body, batch or rate limit exceeded
	CodeUserRejected       = 4001   // the user (or developer) declined to approve
	CodeUnauthorized       = 4100   // no or invalid authorization for this method
	CodeUnsupportedMethod  = 4200   // EIP-1193 method that keymesh does not implement
)

// Request is a JSON-RPC 2.0 request as a client sends it. ID is the raw JSON
// of the id member; nil makes the request a notification.
type Request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Response is a JSON-RPC 2.0 response: exactly one of Result and Error is
// set. ID echoes the request's id, or is null when it could not be read.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error is a JSON-RPC error object. The SDK returns it as a Go error, so
// callers can test the code with errors.As:
//
//	var e *api.Error
//	if errors.As(err, &e) && e.Code == api.CodeUnavailable { … }
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Errorf returns an *Error with the given code and formatted message.
// Messages reach clients: they must never hold secrets or internal causes.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("api: JSON-RPC error %d: %s", e.Code, e.Message)
}
