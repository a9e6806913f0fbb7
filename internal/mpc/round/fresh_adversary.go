//go:build keymesh_adversary

package round

// TestingOnlySetFreshness switches the contribution of Fresh on (true, the
// default) or off (false: sid* = the base session ID, as if no party
// contributed), process-wide, and returns the previous setting. Tests use
// it to prove that an attack works without the defence. It exists only in
// builds with the keymesh_adversary tag: a production binary cannot turn
// the defence off.
func TestingOnlySetFreshness(on bool) (was bool) {
	return !freshnessOff.Swap(!on)
}
