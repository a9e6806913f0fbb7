//go:build keymesh_adversary

package transport

import "github.com/keymesh/keymesh/internal/mpc/round"

// TestingOnlyAlterOutgoing sets a hook that may change each outgoing round
// message, per recipient (it gets a private copy), so that a test can play
// this node as a misbehaving one (internal/adversary). The hook may block,
// which holds that session's sends. Set it before any session runs; nil
// removes it. It exists only in builds with the keymesh_adversary tag.
func (t *Transport) TestingOnlyAlterOutgoing(f func(to uint16, m *round.Message)) {
	t.testingOnlyAlterOutgoing = f
}
