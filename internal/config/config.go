// Package config loads and creates keymesh cluster configuration: one JSON
// file per node naming the node, its listen addresses, its data directory and
// every other node of the cluster with the Ed25519 identity key that the peer
// transport pins (see internal/transport).
//
// A node file looks like this (Peers lists every OTHER node, so the cluster
// has n = len(Peers)+1 nodes):
//
//	{
//	  "id": 1,
//	  "cluster_id": "c-4f1a…",
//	  "threshold": 2,
//	  "api_listen": "127.0.0.1:7100",
//	  "peer_listen": "127.0.0.1:7101",
//	  "data_dir": "node-1",
//	  "peers": [
//	    {"id": 2, "peer_addr": "127.0.0.1:7103", "api_url": "http://127.0.0.1:7102",
//	     "identity_key": "<base64 (standard, padded) of the 32-byte Ed25519 public key>"}
//	  ]
//	}
//
// Load is strict: unknown fields, trailing data, a threshold outside [2, n],
// more than MaxNodes nodes, id 0, duplicate ids (the node's own id among its
// peers included), a peer key that is not a canonical Ed25519 point of large
// order, duplicate peer keys and malformed addresses are all errors. A
// relative data_dir is relative to the directory holding the file.
//
// The node's own identity key is not in the file; it lives in
// <data_dir>/identity.key and is handled by LoadOrCreateIdentity.
//
// Some fields are cluster-wide policy that every node must hold alike, or
// the nodes' states diverge: cluster_id, threshold, the node ids,
// production, node_hosts and admission. Node.PolicyDigest hashes them
// (policy.go says which fields and why, and the encoding); the peer
// transport refuses a peer whose digest differs, and `keymesh cluster
// digest` prints it for operators to compare.
package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keymesh/keymesh/internal/attest"
)

// MaxNodes is the largest cluster a config may describe. The MPC protocols
// cost O(n²) messages per run; 16 keeps a signing round cheap.
const MaxNodes = 16

// MinThreshold is the smallest threshold allowed: with t = 1 a single node
// could sign alone, which is what keymesh exists to prevent.
const MinThreshold = 2

// maxConfigSize bounds the file Load reads.
const maxConfigSize = 1 << 20

// Node is one node's view of the cluster.
type Node struct {
	ID         uint16 `json:"id"`
	ClusterID  string `json:"cluster_id"`
	Threshold  int    `json:"threshold"`
	APIListen  string `json:"api_listen"`  // host:port the JSON-RPC API listens on
	PeerListen string `json:"peer_listen"` // host:port the peer transport listens on
	// DataDir holds the store and identity.key. After Load it is absolute.
	DataDir string `json:"data_dir"`
	Peers   []Peer `json:"peers"`
	// AllowPlaintext makes the node accept unsealed JSON-RPC requests: a
	// development setting (keymesh dev). Without it only requests sealed to
	// the node's attested enclave keys are served (docs/enclave.md).
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
	// RequestKEM is the HPKE KEM of the node's attested request key:
	// "x-wing" (ML-KEM-768 + X25519, the default when empty) or "x25519".
	RequestKEM string `json:"request_kem,omitempty"`
	// SimPlatformKey is the cluster's sim platform key (hex Ed25519 public
	// key), as provisioned by `keymesh cluster init` in every node's data
	// dir: the root that clients pin to verify the nodes' simulated quotes
	// (attest.Policy.SimPlatformKeys). Public; informational for the node.
	SimPlatformKey string `json:"sim_platform_key,omitempty"`
	// Store chooses the node's database; nil means SQLite in DataDir (see
	// StoreConfig).
	Store *StoreConfig `json:"store,omitempty"`
	// Production makes the cluster refuse scopes whose WebAuthn origins
	// are on a node's host (NodeHosts; docs/auth.md, "Scope origins in
	// production"). Cluster-wide: auth applies replicated scope records
	// by it, so every node of a cluster must have the same Production and
	// NodeHosts, or their states diverge.
	Production bool `json:"production,omitempty"`
	// NodeHosts are the hosts (names or IP addresses) at which the
	// cluster's nodes are reached, the same list on every node. Required
	// in production, where it must hold every peer's api_url host.
	NodeHosts []string `json:"node_hosts,omitempty"`
	// Admission is who may create scopes (admission.go): nil or "open"
	// lets anyone, "approved" only the listed developer keys.
	// Cluster-wide like Production: the same on every node.
	Admission *Admission `json:"admission,omitempty"`
	// MetricsListen is the host:port serving GET /metrics (Prometheus
	// text); empty serves no metrics. Never the API port: metrics tell an
	// outsider what the node does (keep it on loopback or an internal
	// network).
	MetricsListen string `json:"metrics_listen,omitempty"`
	// APILimits are the API port's rate limits and connection caps
	// (limits.go); nil keeps the defaults.
	APILimits *APILimits `json:"api_limits,omitempty"`
	// Services configures the node's services (chain ids, timeouts, the
	// upstream chain RPC, outbound fetch rules; services.go); nil keeps
	// the defaults.
	Services *Services `json:"services,omitempty"`
}

// Request KEM names (Node.RequestKEM).
const (
	KEMXWing  = "x-wing"
	KEMX25519 = "x25519"
)

// Peer is another node of the cluster.
type Peer struct {
	ID          uint16 `json:"id"`
	PeerAddr    string `json:"peer_addr"`    // host:port of its peer transport
	APIURL      string `json:"api_url"`      // base URL of its JSON-RPC API
	IdentityKey string `json:"identity_key"` // base64 (std, padded) of its Ed25519 public key
}

// N returns the number of nodes in the cluster, this one included.
func (n *Node) N() int { return len(n.Peers) + 1 }

// Peer returns the peer with the given id.
func (n *Node) Peer(id uint16) (Peer, bool) {
	for _, p := range n.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}

// IDs returns every node id of the cluster, this node's included, sorted.
func (n *Node) IDs() []uint16 {
	ids := []uint16{n.ID}
	for _, p := range n.Peers {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return ids
}

// PublicKey decodes the peer's identity key. It returns an error only for a
// Peer that did not come from Load or InitCluster.
func (p Peer) PublicKey() (ed25519.PublicKey, error) {
	return ParsePublicKey(p.IdentityKey)
}

// Load reads and validates one node's config file. A relative DataDir is
// resolved against the file's directory, so a cluster directory can be moved
// as a whole. Errors name the file and the offending field.
func Load(path string) (*Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxConfigSize)
	}
	n, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if !filepath.IsAbs(n.DataDir) {
		dir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		n.DataDir = filepath.Join(dir, n.DataDir)
	}
	return n, nil
}

// Parse decodes and validates a node config from JSON. DataDir is returned
// as written; Load resolves it.
func Parse(data []byte) (*Node, error) {
	n, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return n, nil
}

func parse(data []byte) (*Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var n Node
	if err := dec.Decode(&n); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	if err := n.validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// Validate checks every rule Load enforces.
func (n *Node) Validate() error {
	if err := n.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (n *Node) validate() error {
	wrap := fmt.Errorf
	if n.RequestKEM != "" && n.RequestKEM != KEMXWing && n.RequestKEM != KEMX25519 {
		return wrap("request_kem %q: want %q or %q", n.RequestKEM, KEMXWing, KEMX25519)
	}
	if n.SimPlatformKey != "" {
		if _, err := attest.ParseSimPlatformKey(n.SimPlatformKey); err != nil {
			return wrap("sim_platform_key: %v", err)
		}
	}
	if n.ID == 0 {
		return wrap("id must be 1..65535, not 0")
	}
	if err := checkClusterID(n.ClusterID); err != nil {
		return wrap("cluster_id: %v", err)
	}
	nodes := n.N()
	if nodes > MaxNodes {
		return wrap("%d nodes, at most %d are supported", nodes, MaxNodes)
	}
	if n.Threshold < MinThreshold {
		return wrap("threshold %d, must be at least %d", n.Threshold, MinThreshold)
	}
	if n.Threshold > nodes {
		return wrap("threshold %d exceeds the %d nodes of the cluster (this node and %d peers)", n.Threshold, nodes, len(n.Peers))
	}
	if err := checkListen(n.APIListen); err != nil {
		return wrap("api_listen: %v", err)
	}
	if err := checkListen(n.PeerListen); err != nil {
		return wrap("peer_listen: %v", err)
	}
	if n.DataDir == "" {
		return wrap("data_dir is empty")
	}
	if err := n.Store.check(); err != nil {
		return wrap("store: %v", err)
	}
	if n.MetricsListen != "" {
		if err := checkListen(n.MetricsListen); err != nil {
			return wrap("metrics_listen: %v", err)
		}
	}
	if err := n.APILimits.check(); err != nil {
		return wrap("api_limits: %v", err)
	}
	if err := n.Services.check(); err != nil {
		return wrap("services: %v", err)
	}
	if err := n.checkProduction(); err != nil {
		return wrap("%v", err)
	}
	if err := n.Admission.check(); err != nil {
		return wrap("admission: %v", err)
	}
	seenID := map[uint16]bool{n.ID: true}
	seenKey := map[string]uint16{}
	for i, p := range n.Peers {
		if p.ID == 0 {
			return wrap("peers[%d]: id must be 1..65535, not 0", i)
		}
		if seenID[p.ID] {
			if p.ID == n.ID {
				return wrap("peers[%d]: id %d is this node's own id", i, p.ID)
			}
			return wrap("peers[%d]: id %d appears twice", i, p.ID)
		}
		seenID[p.ID] = true
		if err := checkDial(p.PeerAddr); err != nil {
			return wrap("peer %d: peer_addr: %v", p.ID, err)
		}
		if err := checkURL(p.APIURL); err != nil {
			return wrap("peer %d: api_url: %v", p.ID, err)
		}
		pub, err := parsePublicKey(p.IdentityKey)
		if err != nil {
			return wrap("peer %d: identity_key: %w", p.ID, err)
		}
		if other, ok := seenKey[string(pub)]; ok {
			return wrap("peer %d: identity_key is also the key of peer %d", p.ID, other)
		}
		seenKey[string(pub)] = p.ID
	}
	return nil
}

func checkClusterID(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("%d characters, at most 64", len(s))
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", s)
		}
	}
	return nil
}

// checkListen accepts host:port with a port in 1..65535; the host may be
// empty (all interfaces).
func checkListen(addr string) error {
	_, err := splitHostPort(addr, false)
	return err
}

// checkDial accepts host:port with a non-empty host and a port in 1..65535.
func checkDial(addr string) error {
	_, err := splitHostPort(addr, true)
	return err
}

func splitHostPort(addr string, needHost bool) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%q is not host:port", addr)
	}
	if needHost && host == "" {
		return 0, fmt.Errorf("%q has no host", addr)
	}
	if strings.ContainsAny(host, " /\\@?#") {
		return 0, fmt.Errorf("%q: bad host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || port != strconv.FormatUint(p, 10) {
		return 0, fmt.Errorf("%q: port must be 1..65535", addr)
	}
	return int(p), nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: no user info, query or fragment allowed", s)
	}
	if p := u.Port(); p != "" {
		if _, err := splitHostPort(u.Host, true); err != nil {
			return err
		}
	}
	return nil
}

// ParsePublicKey decodes a base64 (standard alphabet, padded, no
// whitespace) Ed25519 public key and checks that it is a canonical encoding
// of a curve point of large order (RFC 8032 §5.1.3 decoding; the small-order
// points are rejected because a signature under them proves nothing).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	pub, err := parsePublicKey(s)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return pub, nil
}

func parsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard padded base64")
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%d bytes, an Ed25519 public key has %d", len(b), ed25519.PublicKeySize)
	}
	if err := checkEdwardsPoint(b); err != nil {
		return nil, err
	}
	return ed25519.PublicKey(b), nil
}

// EncodePublicKey is the inverse of ParsePublicKey.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}
