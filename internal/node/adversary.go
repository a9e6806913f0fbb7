//go:build keymesh_adversary

package node

import "github.com/keymesh/keymesh/internal/wallet"

// TestingOnlySetSessionRecord switches this node's durable session record
// (session.go) on (true, the default) or off, and returns the previous
// setting. Off, RunSession runs a session id it ran before, as a node
// without the defence would: the adversarial tests (internal/adversary) use
// it to prove that they see the attack the record stops. It exists only in
// builds with the keymesh_adversary tag.
func (n *Node) TestingOnlySetSessionRecord(on bool) (was bool) {
	return !n.sessionRecordOff.Swap(!on)
}

// TestingOnlyWallet returns the node's wallet service, so that a test
// playing this node as a malicious one can reach its own shares
// (wallet.Service.TestingOnlyShare). It exists only in builds with the
// keymesh_adversary tag.
func (n *Node) TestingOnlyWallet() *wallet.Service { return n.wallet }
