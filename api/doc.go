// Package api holds the wire types of a keymesh node's public API, shared by
// the node (internal/httpapi), the Go SDK (package client) and the CLI.
//
// # Transport
//
// Each node serves one JSON-RPC 2.0 endpoint (https://www.jsonrpc.org/specification)
// at POST / with Content-Type application/json. Batches (a JSON array of
// requests) are supported, up to MaxBatch requests; a larger one is refused
// with CodeLimitExceeded as soon as its request MaxBatch+1 is read.
// Notifications (requests without an id) are run and get no response, and
// a request or batch made only of notifications gets HTTP 204 with no body.
//
// The Content-Type must be application/json, a charset parameter, if any,
// utf-8 (a sealed request is application/keymesh-sealed, or application/json
// with an X-Encrypted-Key header; docs/enclave.md): any other is answered
// with HTTP 415 and a JSON-RPC error with code CodeInvalidRequest, and runs
// nothing. Browsers send only
// text/plain, forms and multipart to another origin without a CORS
// preflight (which a node never grants), so a page elsewhere cannot make
// its visitors' browsers call a node.
//
// The request body is limited to MaxBodyBytes. A larger body is answered
// with HTTP 413 and a JSON-RPC error object with code CodeLimitExceeded and
// id null; every other JSON-RPC outcome, error or not, is HTTP 200.
//
// The request envelope is decoded strictly: the members jsonrpc (exactly
// "2.0"), method (a non-empty string), id (string, number or null; absent
// for a notification) and params (object or array; absent or null means
// none) are the only members allowed, each at most once.
//
// Beside it: GET /healthz (200 while the process runs), GET /readyz (200
// when at least threshold nodes, this one included, are reachable; 503
// otherwise; the body is a ReadyStatus). The Prometheus metrics are not on
// this port: a node serves them on its metrics listener, if configured.
//
// # Errors
//
// Errors are Error values with one of the codes below. The JSON-RPC 2.0
// codes -32700..-32603 keep their meaning from the specification (section
// 5.1). keymesh's own codes reuse the meanings that EIP-1474 gives to
// -32000..-32005 and that EIP-1193 gives to 4001/4100/4200, so that
// Ethereum libraries (viem, ethers) map them to their own error classes.
// An internal error (-32603) always carries the fixed message "internal
// error"; the cause goes to the node's log under the request id returned
// in the X-Request-Id response header. A request refused by a rate limit
// gets CodeRateLimited (-32060) with a retry-after hint (RateLimitData), and
// HTTP 429 when the whole body was refused.
//
// # API maturity
//
// Experimental: method names follow EIP-1193 and will stay; the set of
// keymesh_* methods and their result fields may still grow. Fields are only
// ever added, never renamed, and clients must ignore fields they do not know.
package api
