//go:build !unix

package porttest

// lockBlock cannot lock across processes here: two test processes may
// pick the same block, and the free-port check is all that guards it.
func lockBlock(string) (unlock func(), ok bool) { return func() {}, true }
