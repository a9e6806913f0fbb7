package client

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/keymesh/keymesh/api"
)

// RelayPost posts one message of an end-to-end channel (internal/channel:
// the bytes its Seal, Join, Accept or Rotate made) to the inbox of the
// channel's recipient to (api.RelayToInviter or api.RelayToJoiner) in
// mailbox (the channel's Mailbox, 32 hex digits) of scope. The node stores
// it and forwards it to its peers; Stored says how many nodes hold it.
func (c *Client) RelayPost(ctx context.Context, scope, mailbox, to string, msg []byte) (*api.RelayPostResult, error) {
	if len(msg) == 0 || len(msg) > api.MaxRelayMessage {
		return nil, fmt.Errorf("client: a relay message is 1 to %d bytes, got %d", api.MaxRelayMessage, len(msg))
	}
	var out api.RelayPostResult
	p := api.RelayPostParams{Scope: scope, Mailbox: mailbox, To: to, Message: base64.RawURLEncoding.EncodeToString(msg)}
	if err := c.Call(ctx, api.MethodRelayPost, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RelayMessage is one message of an inbox as a node holds it.
type RelayMessage struct {
	Index   uint64 // its place in the node's inbox: fetch again after the last
	Message []byte // what the sender posted, or what the node says it did: open it with the channel
}

// RelayFetch returns the messages of to's inbox in mailbox of scope that
// the node holds after index after (0: from the first), and whether there
// are more. The node is not trusted: a message it altered or made up does
// not open in the channel (channel.ErrNotAuthentic), one it dropped shows
// as a gap (*channel.OrderError); fetch from another node then.
func (c *Client) RelayFetch(ctx context.Context, scope, mailbox, to string, after uint64) ([]RelayMessage, bool, error) {
	var out api.RelayFetchResult
	p := api.RelayFetchParams{Scope: scope, Mailbox: mailbox, To: to, After: after}
	if err := c.Call(ctx, api.MethodRelayFetch, p, &out); err != nil {
		return nil, false, err
	}
	msgs := make([]RelayMessage, 0, len(out.Messages))
	for _, m := range out.Messages {
		b, err := base64.RawURLEncoding.Strict().DecodeString(m.Message)
		if err != nil || len(b) == 0 || len(b) > api.MaxRelayMessage || m.Index <= after {
			return nil, false, fmt.Errorf("client: the node answered a malformed relay message (index %d)", m.Index)
		}
		msgs = append(msgs, RelayMessage{Index: m.Index, Message: b})
	}
	return msgs, out.More, nil
}
