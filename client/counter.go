package client

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// CounterAdd adds delta (1 to api.MaxCounterDelta) to the named counter of
// the demo counter service, with a counter.add record signed by key, and
// returns the counter's value on the node after it. The service runs only
// on nodes started for tests (docs/services.md); others answer
// api.CodeMethodNotFound.
func (c *Client) CounterAdd(ctx context.Context, key *Key, counter string, delta uint32) (*api.CounterValue, error) {
	b := api.CounterAdd{Counter: counter, Delta: delta}
	rand.Read(b.Nonce[:])
	if _, err := api.DecodeCounterAdd(b.Marshal()); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	r, err := record.Sign(record.Kind(api.RecordKindCounterAdd), b.Marshal(), key.k)
	if err != nil {
		return nil, err
	}
	var out api.CounterValue
	if err := c.Call(ctx, api.MethodCounterAdd, encodeRecord(r), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CounterGet returns the named counter's value on the node, and what each
// of its peers says its own value is.
func (c *Client) CounterGet(ctx context.Context, counter string) (*api.CounterValue, error) {
	var out api.CounterValue
	if err := c.Call(ctx, api.MethodCounterGet, api.CounterGetParams{Counter: counter}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
