package rvole

import "fmt"

// Format prints a placeholder for every verb, so that a seed never reaches
// a log or an error through fmt (which would otherwise print its
// unexported fields).
func (a AliceSetup) Format(f fmt.State, verb rune) { fmt.Fprint(f, "rvole.AliceSetup{redacted}") }

// Format prints a placeholder for every verb.
func (b BobSetup) Format(f fmt.State, verb rune) { fmt.Fprint(f, "rvole.BobSetup{redacted}") }

// Format prints a placeholder for every verb.
func (s BobSetupState) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, "rvole.BobSetupState{redacted}")
}

// Format prints a placeholder for every verb.
func (m BobMul) Format(f fmt.State, verb rune) { fmt.Fprint(f, "rvole.BobMul{redacted}") }
