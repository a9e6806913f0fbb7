//go:build keymesh_adversary

// Package adversary is keymesh's network-level adversarial test bed: real
// nodes (package node: real TCP sockets, real SQLite stores, the real
// mutually authenticated peer transport, real services) in one process,
// any of which a test can make misbehave on command. It is the
// network-level counterpart of package mpctest (in-process protocol runs
// with message rules), and it exists to test the rule of STYLE.md habit 13
// ("each party defends itself") and DESIGN.md's trust model against a
// malicious node that runs its own, modified build.
//
// Every file carries the keymesh_adversary build tag, as do the few hooks
// it uses elsewhere (node.Node.TestingOnlySetSessionRecord,
// wallet.Service.TestingOnlyShare, transport.Transport.TestingOnlyAlterOutgoing,
// round.TestingOnlySetFreshness, sign's attacker functions): none of it can
// be reached from a production binary. Run its tests with
//
//	go test -race -tags keymesh_adversary ./internal/adversary
//
// # Shape
//
// NewCluster starts an n-node, t-of-n cluster (3 nodes, t = 2 by default)
// and stops it when the test ends; Restart stops a node and starts it again
// on its data dir, as an operator would. NewUser registers a user whose own
// key approves operations (a user-mode scope), and CreateWallet runs a key
// generation for it through the cluster's public API. Cluster.Call sends
// any JSON-RPC request, with any X-Keymesh-Auth header, to any node (a
// client, or an attacker replaying a header to other gateways).
//
// Evil(id) turns node id into the attacker. The node keeps running its
// honest services (it still answers its peers), and the test drives it
// around them, as a malicious operator's build would:
//
//   - Call / SendRaw send any peer RPC (kind, body) to a peer, and Replay
//     sends one several times; SignInvitation and KeygenInvitation build the
//     wallet's invitations from an approval the node received as gateway.
//   - Start runs a session of the attacker's choosing over the node's own
//     transport (bypassing its own defences, such as its session record)
//     while inviting peers to theirs, and returns a *Run (its result, each
//     peer's answer); RunSession is Start and Wait; OpenSessions starts k
//     at once. Any session works: an honest one (sign.NewSession with
//     Share), or an attacker's (sign.TestingOnlyEvilSession).
//   - Every node is started with the hook in place, so any node can be
//     made evil at any time: Cluster.Evil(id).
//
// Every node, evil or not, can also be told to drop a defence for a test
// that proves the test sees the attack: node.TestingOnlySetSessionRecord
// and round.TestingOnlySetFreshness (process-wide).
//   - Alter installs a Rule that changes, per recipient, any round message
//     the node sends (FlipBit, Hold, and any func); rules stay in force
//     across a Restart of the node.
//   - Handle replaces the node's answer to a peer RPC kind (a node that lies
//     about what it recorded, or answers what it should refuse).
//   - Share returns the node's own key share, which a malicious node holds.
//
// # Adding a misbehaviour
//
// A new misbehaviour is usually a method on *Evil that combines the ones
// above: build a body (or a session) and send it, or install a Rule for the
// messages it should change. Keep it free of assertions (return what
// happened: errors, outputs, the peers' answers) so that tests of other
// services can use it, and keep secrets out of its errors and logs as
// anywhere else: a test compares a recovered key, it never prints it.
//
// The honest nodes log to buffers (Cluster.Log) so that a test can check
// that a refusal was logged as a security event, and that no secret was.
package adversary
