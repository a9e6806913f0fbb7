package api

import (
	"encoding/json"
	"errors"
	"time"
)

// CodeBusy refuses a request because the nodes' MPC work (key generations
// or signing sessions) is full for its scope right now: the scope has
// used its fair share of a node's concurrency, or the node all of it.
// Nothing was signed or created. It is retryable: the error's Data is a
// BusyData saying when to try again. A gateway already retries a busy
// co-signer within the request's deadline (with the same request, so an
// approval is not spent twice), so a client sees CodeBusy only when that
// did not succeed in time.
//
// It is distinct from CodeUnavailable (nodes are down or unreachable),
// CodeRateLimited (the scope's or client's request budget is used up) and
// CodeRejected (refused for good, e.g. not authorised).
const CodeBusy = -32006

// BusyData is the Data of a CodeBusy error.
type BusyData struct {
	// RetryAfterMs is how long, in milliseconds, the node suggests waiting
	// before trying again (at least 1): about how long one session of the
	// refused kind takes on it now.
	RetryAfterMs int64 `json:"retryAfterMs"`
	// Work names what is full: "keygen" or "sign".
	Work string `json:"work"`
}

// Busy returns a CodeBusy error with message msg for work, suggesting a
// retry after retryAfter (rounded up to a millisecond, at least 1).
func Busy(work string, retryAfter time.Duration, msg string) *Error {
	ms := max(retryAfter.Milliseconds(), 1)
	if time.Duration(ms)*time.Millisecond < retryAfter {
		ms++
	}
	data, _ := json.Marshal(BusyData{RetryAfterMs: ms, Work: work})
	e := Errorf(CodeBusy, "%s", msg)
	e.Data = data
	return e
}

// BusyRetryAfter returns the retry-after hint of err if it is a CodeBusy
// *Error (zero when its Data holds none), and whether it is one.
func BusyRetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBusy {
		return 0, false
	}
	var d BusyData
	if json.Unmarshal(e.Data, &d) != nil || d.RetryAfterMs <= 0 {
		return 0, true
	}
	return time.Duration(d.RetryAfterMs) * time.Millisecond, true
}
