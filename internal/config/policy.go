package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/keymesh/keymesh/internal/record"
)

// # Cluster policy digest
//
// Some of a node's config is policy that every node of the cluster must
// apply identically, or the nodes' auth states diverge: a record one node
// applies, another refuses, and each serves its own answer (issue 13).
// Nothing but the operators' care made them agree, so a node's Policy
// is hashed into a PolicyDigest that the peer transport exchanges when a
// link is set up (internal/transport): a peer whose digest differs is
// refused, links both ways, for replication, catch-up and MPC alike, and
// reported as a policy mismatch, not merely as unreachable. `keymesh
// cluster digest` prints a config's digest for operators to compare.
//
// The policy is what must agree and can be read from one node's file:
//
//   - cluster_id, threshold and the node ids (this node's and its
//     peers'): the cluster's shape. Sessions are bound to them and the
//     write quorum n-t+1 is computed from them; a node that counts
//     another n or t acknowledges writes the others do not consider
//     durable. (They are also bound into each node's sealed identity,
//     docs/enclave.md, but only node by node; the digest compares them
//     across nodes.)
//   - production and node_hosts: auth applies scope records by them
//     (production clusters refuse node origins as scope origins).
//   - admission policy and developer_keys: auth applies scope.create
//     records by them.
//
// Left out: per-node settings that change no node's decision about a
// record or a session: listen addresses, data_dir, store, peer addresses
// and URLs, metrics, API limits, services, request_kem, allow_plaintext,
// sim_platform_key. The peers' identity keys are left out too: each link
// already pins them both ways (a node's own key is not in its file, so its
// file alone could not give a digest that covers them).
//
// The digest is over the policy's effect, not its spelling, so that two
// configs that apply the same records have the same digest: node_hosts
// are compared as auth compares them (case-insensitive, without a final
// dot, as a set) and only count in production (auth ignores them
// otherwise); a missing admission is the open policy; developer keys are
// a set of parsed keys. The statement hashed is
//
//	"KMPOLICY\x01" ‖ u8 len ‖ cluster_id ‖ u16 threshold ‖
//	u16 count ‖ (u16 node id)* ascending ‖
//	u8 production (0|1) ‖ u32 count ‖ (u32 len ‖ host)* ascending ‖
//	u8 admission (0 open | 1 approved) ‖
//	u32 count ‖ (u8 alg ‖ u8 len ‖ key)* ascending
//
// and the digest is its SHA-256. The version byte in the domain changes
// with any change to what the statement covers; nodes of different
// versions then refuse each other (upgrade every node of a cluster to the
// same release).

// policyDomain begins the statement PolicyDigest hashes.
const policyDomain = "KMPOLICY\x01"

// PolicyFields names, for operators, the config fields the digest covers.
const PolicyFields = "cluster_id, threshold, the node ids (id and peers[].id), production, node_hosts and admission"

// Policy is the cluster-wide part of a node config, in canonical form (see
// above): what Node.Policy returns and PolicyDigest hashes. Its JSON form
// is what `keymesh cluster digest --show` prints.
type Policy struct {
	ClusterID  string   `json:"cluster_id"`
	Threshold  int      `json:"threshold"`
	Nodes      []uint16 `json:"nodes"` // every node id, ascending
	Production bool     `json:"production"`
	// NodeHosts are lower-case, without a final dot, sorted, each once;
	// empty unless Production.
	NodeHosts []string `json:"node_hosts"`
	// Admission is AdmissionOpen or AdmissionApproved (a config without
	// admission is open).
	Admission string `json:"admission"`
	// DeveloperKeys are the approved keys in their String form, ordered
	// by their encoding, each once; empty unless approved.
	DeveloperKeys []string `json:"developer_keys"`
}

// PolicyDigest is the SHA-256 of a Policy's statement.
type PolicyDigest [32]byte

// String is the digest in lower-case hex.
func (d PolicyDigest) String() string { return hex.EncodeToString(d[:]) }

// ParsePolicyDigest parses String's form.
func ParsePolicyDigest(s string) (PolicyDigest, error) {
	var d PolicyDigest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) || hex.EncodeToString(b) != s {
		return d, fmt.Errorf("config: policy digest %q: want %d lower-case hex digits", s, 2*len(d))
	}
	copy(d[:], b)
	return d, nil
}

// Policy returns the cluster-wide policy of a validated config.
func (n *Node) Policy() Policy {
	p := Policy{
		ClusterID:     n.ClusterID,
		Threshold:     n.Threshold,
		Nodes:         n.IDs(),
		Production:    n.Production,
		NodeHosts:     []string{},
		Admission:     AdmissionOpen,
		DeveloperKeys: []string{},
	}
	if n.Production {
		for _, h := range n.NodeHosts {
			p.NodeHosts = append(p.NodeHosts, canonicalHost(h))
		}
		slices.Sort(p.NodeHosts)
		p.NodeHosts = slices.Compact(p.NodeHosts)
	}
	if n.Admission.Approved() {
		p.Admission = AdmissionApproved
		keys := n.Admission.Keys()
		slices.SortFunc(keys, compareKeys)
		keys = slices.CompactFunc(keys, record.PublicKey.Equal)
		for _, k := range keys {
			p.DeveloperKeys = append(p.DeveloperKeys, k.String())
		}
	}
	return p
}

// PolicyDigest is n.Policy().Digest().
func (n *Node) PolicyDigest() PolicyDigest { return n.Policy().Digest() }

// canonicalHost is a node host as auth compares it (internal/auth,
// OriginPolicy): case-insensitive, a final dot ignored.
// canonicalHost is a node host as the auth package compares it: a name
// without case or a final dot, an IP address in its canonical form
// (without brackets; "0:0::1" is "::1").
func canonicalHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

func compareKeys(a, b record.PublicKey) int {
	if a.Alg != b.Alg {
		return int(a.Alg) - int(b.Alg)
	}
	return bytes.Compare(a.Key, b.Key)
}

// Statement returns the bytes Digest hashes (the layout above). p must
// come from Node.Policy.
func (p Policy) Statement() []byte {
	st := []byte(policyDomain)
	st = append(st, byte(len(p.ClusterID))) // at most 64 (validate)
	st = append(st, p.ClusterID...)
	st = binary.BigEndian.AppendUint16(st, uint16(p.Threshold)) // at most MaxNodes
	st = binary.BigEndian.AppendUint16(st, uint16(len(p.Nodes)))
	for _, id := range p.Nodes {
		st = binary.BigEndian.AppendUint16(st, id)
	}
	if p.Production {
		st = append(st, 1)
	} else {
		st = append(st, 0)
	}
	st = binary.BigEndian.AppendUint32(st, uint32(len(p.NodeHosts)))
	for _, h := range p.NodeHosts {
		st = binary.BigEndian.AppendUint32(st, uint32(len(h)))
		st = append(st, h...)
	}
	if p.Admission == AdmissionApproved {
		st = append(st, 1)
	} else {
		st = append(st, 0)
	}
	st = binary.BigEndian.AppendUint32(st, uint32(len(p.DeveloperKeys)))
	for _, s := range p.DeveloperKeys {
		k, _ := record.ParsePublicKey(s)               // canonical: Node.Policy made it from a parsed key
		st = append(st, byte(k.Alg), byte(len(k.Key))) // keys are 32 or 65 bytes
		st = append(st, k.Key...)
	}
	return st
}

// Digest hashes the policy's statement.
func (p Policy) Digest() PolicyDigest { return sha256.Sum256(p.Statement()) }

// Diff names the fields in which p and o differ, in the order of the
// statement: "cluster_id", "threshold", "nodes", "production",
// "node_hosts", "admission", "developer_keys".
func (p Policy) Diff(o Policy) []string {
	var d []string
	if p.ClusterID != o.ClusterID {
		d = append(d, "cluster_id")
	}
	if p.Threshold != o.Threshold {
		d = append(d, "threshold")
	}
	if !slices.Equal(p.Nodes, o.Nodes) {
		d = append(d, "nodes")
	}
	if p.Production != o.Production {
		d = append(d, "production")
	}
	if !slices.Equal(p.NodeHosts, o.NodeHosts) {
		d = append(d, "node_hosts")
	}
	if p.Admission != o.Admission {
		d = append(d, "admission")
	}
	if !slices.Equal(p.DeveloperKeys, o.DeveloperKeys) {
		d = append(d, "developer_keys")
	}
	return d
}
