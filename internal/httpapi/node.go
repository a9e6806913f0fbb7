package httpapi

import (
	"context"
	"encoding/json"

	"github.com/keymesh/keymesh/api"
)

// NodeInfoFunc reports the node's identity, cluster and peer reachability.
type NodeInfoFunc func(ctx context.Context) (*api.NodeInfo, error)

// RegisterNode adds the node method group: keymesh_nodeInfo (no params).
func RegisterNode(r *Registry, info NodeInfoFunc) {
	r.Register(api.MethodNodeInfo, func(ctx context.Context, params json.RawMessage) (any, error) {
		if err := NoParams(params); err != nil {
			return nil, err
		}
		return info(ctx)
	})
}
