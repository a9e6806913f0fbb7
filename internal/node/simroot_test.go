package node

import (
	"crypto/ed25519"
	"encoding/hex"

	"github.com/keymesh/keymesh/internal/enclave/sim"
)

// simRoot is the sim platform key of n's enclave, in hex: the root a client
// pins to verify n's quotes (config.Node.SimPlatformKey, as cluster init
// provisioned it).
func simRoot(n *Node) string { return hex.EncodeToString(simRoots(n)[0]) }

func simRoots(n *Node) []ed25519.PublicKey {
	return []ed25519.PublicKey{n.Enclave().(*sim.Backend).PlatformKey()}
}
