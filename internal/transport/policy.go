package transport

import (
	"crypto/tls"
	"fmt"

	"github.com/keymesh/keymesh/internal/config"
)

// # Cluster policy
//
// Every node of a cluster must apply the same cluster-wide policy
// (config.Policy: production, node_hosts, admission, and the cluster's
// shape), or their states diverge (issue 13). Each node puts its policy
// digest in its certificate (selfSignedCert), and each side of a link
// compares the peer's with its own as soon as the TLS handshake is done:
// the dialler before its first ping, the listener before it reads a frame.
// A peer whose digest differs, or that presents none, is refused both
// ways: no round message, call, replication push or catch-up answer
// passes between the two nodes, so a node whose operator changed the
// policy on it alone stands apart instead of serving records the others
// refuse. Peers reports it (PeerStatus.PolicyMismatch, and LastError says
// "cluster policy mismatch" with both digests) and the log says it once
// per peer and digest, naming the fields to compare.
//
// The digest shows a difference in configuration; it does not stop a
// node whose operator runs other code and presents the others' digest:
// against that, every node checks each record itself when it applies it.

// policyURIScheme is the scheme of the certificate URI that carries the
// digest: "keymesh-policy:<64 hex digits>".
const policyURIScheme = "keymesh-policy"

// PolicyMismatchError is a peer refused because its cluster policy digest
// is not this node's. It is the Err of the *PeerDownError that sessions
// and calls needing the peer fail with.
type PolicyMismatchError struct {
	Peer   uint16
	Ours   config.PolicyDigest
	Theirs config.PolicyDigest // zero if Missing
	// Missing: the peer's certificate carries no (well-formed) digest: a
	// build from before the digest, or not keymesh.
	Missing bool
}

func (e *PolicyMismatchError) Error() string {
	theirs := "none (a keymesh build without the policy digest?)"
	if !e.Missing {
		theirs = e.Theirs.String()
	}
	return fmt.Sprintf("cluster policy mismatch: peer %d's policy digest is %s, this node's is %s: "+
		"compare %s in both nodes' configs (keymesh cluster digest --config FILE)", e.Peer, theirs, e.Ours, config.PolicyFields)
}

// peerPolicy returns the digest in the peer's certificate. Only one
// certificate is ever accepted (peerKey).
func peerPolicy(cs tls.ConnectionState) (config.PolicyDigest, bool) {
	if len(cs.PeerCertificates) != 1 {
		return config.PolicyDigest{}, false
	}
	var found []string
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.Scheme == policyURIScheme {
			found = append(found, u.Opaque)
		}
	}
	if len(found) != 1 {
		return config.PolicyDigest{}, false
	}
	d, err := config.ParsePolicyDigest(found[0])
	return d, err == nil
}

// checkPolicy compares the policy digest of a peer's new connection, in
// either direction, with ours. A mismatch is remembered for Peers, logged
// when it is new (or the peer's digest changed), and closes our outbound
// link to the peer if one is up (a peer showing two digests is refused on
// both). A match clears what was remembered.
func (t *Transport) checkPolicy(peer uint16, cs tls.ConnectionState) error {
	l := t.links[peer]
	theirs, ok := peerPolicy(cs)
	if ok && theirs == t.policy {
		if old := l.policy.Swap(nil); old != nil {
			t.log.Info("peer's cluster policy digest now matches this node's", "peer", peer, "policy_digest", t.policy.String())
		}
		return nil
	}
	e := &PolicyMismatchError{Peer: peer, Ours: t.policy, Theirs: theirs, Missing: !ok}
	if old := l.policy.Swap(e); old == nil || old.Theirs != e.Theirs || old.Missing != e.Missing {
		t.log.Error("peer refused: its cluster policy differs from this node's; no replication, catch-up or signing with it until both configs agree",
			"peer", peer, "peer_policy_digest", theirsString(e), "policy_digest", t.policy.String(),
			"compare", config.PolicyFields, "hint", "keymesh cluster digest --config FILE on each node")
	}
	if pc := l.current(); pc != nil {
		pc.close(e)
	}
	return e
}

func theirsString(e *PolicyMismatchError) string {
	if e.Missing {
		return "none"
	}
	return e.Theirs.String()
}

// PolicyDigest returns the cluster policy digest this node presents.
func (t *Transport) PolicyDigest() config.PolicyDigest { return t.policy }
