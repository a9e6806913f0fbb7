package api

import "time"

// Method names.
const (
	MethodNodeInfo = "keymesh_nodeInfo"
)

// NodeInfo is the result of keymesh_nodeInfo (no params): who the node is,
// its cluster, and which of its peers it can reach now.
type NodeInfo struct {
	NodeID    uint16 `json:"nodeId"`
	ClusterID string `json:"clusterId"`
	Threshold int    `json:"threshold"`
	N         int    `json:"n"`
	Version   string `json:"version"`
	// IdentityKey is the node's Ed25519 identity public key, base64 (std,
	// padded), as in the cluster config.
	IdentityKey string     `json:"identityKey"`
	Peers       []PeerInfo `json:"peers"`
}

// PeerInfo is one other node as seen by the answering node.
type PeerInfo struct {
	ID        uint16    `json:"id"`
	APIURL    string    `json:"apiUrl,omitempty"`
	Reachable bool      `json:"reachable"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	// PolicyMismatch: this node refuses the peer because its cluster
	// policy (production, node_hosts, admission, shape) differs; LastError
	// names both digests (keymesh cluster digest compares config files).
	PolicyMismatch bool `json:"policyMismatch,omitempty"`
}

// ReadyStatus is the JSON body of GET /readyz.
type ReadyStatus struct {
	Ready     bool     `json:"ready"`
	Threshold int      `json:"threshold"`
	Reachable int      `json:"reachable"` // nodes reachable, this one included
	Down      []uint16 `json:"down"`      // ids of unreachable peers, never null
}
