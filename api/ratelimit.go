package api

import (
	"encoding/json"
	"errors"
	"time"
)

// CodeRateLimited refuses a request because its client address, or the
// scope it acts in, has used up its share of requests for now (a token
// bucket per client address and per scope; stricter for the passkey
// ceremonies, which anyone may start without logging in). Nothing ran. The
// error's Data is a RateLimitData saying when to try again; over HTTP the
// answer is also status 429 with a Retry-After header (seconds) when every
// request of the body was refused.
//
// It is distinct from CodeLimitExceeded (a body, batch or table size
// limit: retrying the same request does not help) and from a node's
// "busy" answer (its MPC work is full: another node may serve it).
const CodeRateLimited = -32060

// RateLimitData is the Data of a CodeRateLimited error.
type RateLimitData struct {
	// RetryAfterMs is how long, in milliseconds, until the request would be
	// admitted if nothing else is sent meanwhile (at least 1).
	RetryAfterMs int64 `json:"retryAfterMs"`
	// Limit names the bucket that refused: "client" or "scope", with
	// "ceremony-" in front for the ceremony methods' stricter ones, or
	// "sealed-client" for an address over its share of the node's replay
	// cache of sealed requests.
	Limit string `json:"limit"`
}

// RateLimited returns a CodeRateLimited error for the bucket limit that
// admits the request again after retryAfter.
func RateLimited(limit string, retryAfter time.Duration) *Error {
	ms := max(retryAfter.Milliseconds(), 1)
	if time.Duration(ms)*time.Millisecond < retryAfter {
		ms++ // round up: retrying at the hint must succeed
	}
	data, _ := json.Marshal(RateLimitData{RetryAfterMs: ms, Limit: limit})
	e := Errorf(CodeRateLimited, "rate limit exceeded (%s); retry after %d ms", limit, ms)
	e.Data = data
	return e
}

// RetryAfter returns the retry-after hint of err if it is a CodeRateLimited
// *Error, and whether it is one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeRateLimited {
		return 0, false
	}
	var d RateLimitData
	if json.Unmarshal(e.Data, &d) != nil || d.RetryAfterMs <= 0 {
		return 0, true
	}
	return time.Duration(d.RetryAfterMs) * time.Millisecond, true
}
