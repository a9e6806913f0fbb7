package node

import (
	"context"
	"errors"

	"github.com/keymesh/keymesh/internal/relay"
)

// openRelay opens the relay (internal/relay): it stores in the node's
// store, forwards over the transport, and takes posts only for scopes
// auth knows here.
func (n *Node) openRelay() (Service, error) {
	a := n.Auth()
	if a == nil {
		return nil, errors.New("node: the relay needs auth (scopes)")
	}
	return relay.New(relay.Options{
		Store:     n.store,
		Transport: n.tr,
		ScopeKnown: func(ctx context.Context, scope string) bool {
			_, ok := a.Quota(ctx, scope)
			return ok
		},
		Logger: n.log.With("component", "relay"),
	})
}
