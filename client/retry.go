package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keymesh/keymesh/api"
)

// RetryPolicy says how Call sends a call again that a node refused as
// busy (api.CodeBusy: its MPC work is full for the scope) or rate-limited
// (api.CodeRateLimited: the client's or scope's request budget is used
// up). Both refusals are authenticated answers of the node (sealed ones
// for a sealed client), say that nothing was signed or created, and carry
// the node's retryAfterMs hint; Call waits that long (at most MaxWait,
// plus up to a tenth more at random, so that clients refused together do
// not come back together) and tries again, up to MaxAttempts attempts in
// all, and never past ctx's deadline: when the wait would end after it,
// Call returns the refusal at once. No other error is retried: a call
// that may have run (a lost connection, a timeout, an unauthenticated
// answer to a sealed request) could run twice.
//
// A retried call carries the same approvals (the proofs of WithProofs).
// A node records an approval's nonces only once it authorised the call;
// the rate limits, and the gateway's refusal of a scope over its share of
// the MPC slots, come before that, so the retry is the approval's first
// use. A gateway that authorised the call and then found its own or its
// co-signers' slots busy retries itself, with the same request id, until
// the request's deadline; if it still answers busy, the approval is
// recorded for that request, and the node refuses the client's retry as
// a replay (api.CodeAuthReplay): the approval is never spent twice. Call
// then returns that replay error, saying that the refused attempt used
// the approval and a new one is needed.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts in all, retries included; 1
	// (or less) turns retrying off.
	MaxAttempts int
	// MaxWait caps one wait, whatever the node's hint.
	MaxWait time.Duration
}

// DefaultRetry is the policy of a Client made without WithRetry: three
// attempts, waits of at most 2 s.
var DefaultRetry = RetryPolicy{MaxAttempts: 3, MaxWait: 2 * time.Second}

// fallbackWait is the wait when a refusal carries no hint.
const fallbackWait = 100 * time.Millisecond

// WithRetry sets the client's retry policy (see RetryPolicy);
// WithRetry(RetryPolicy{MaxAttempts: 1}) turns retries off.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p }
}

// retryHint returns how long the node asks to wait before err's call is
// sent again, and whether err is a refusal that may be retried at all.
func retryHint(err error) (time.Duration, bool) {
	if d, ok := api.BusyRetryAfter(err); ok {
		return d, true
	}
	if d, ok := api.RetryAfter(err); ok {
		return d, true
	}
	return 0, false
}

func (c *Client) callRetrying(ctx context.Context, method string, params, result any) error {
	var refused error // the last busy or rate-limit refusal, when retrying
	for attempt := 1; ; attempt++ {
		err := c.callOnce(ctx, method, params, result)
		if err == nil {
			return nil
		}
		hint, ok := retryHint(err)
		if !ok {
			var ae *api.Error
			if refused != nil && errors.As(err, &ae) && ae.Code == api.CodeAuthReplay {
				return fmt.Errorf("%w (sent again after %v: the refused attempt used the approval; approve the call again)", err, refused)
			}
			return err
		}
		if attempt >= c.retry.MaxAttempts {
			return err
		}
		wait := hint
		if wait <= 0 {
			wait = fallbackWait
		}
		if c.retry.MaxWait > 0 {
			wait = min(wait, c.retry.MaxWait)
		}
		wait += rand.N(wait/10 + 1)
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		refused = err
	}
}
