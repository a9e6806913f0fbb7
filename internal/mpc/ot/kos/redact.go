package kos

import "fmt"

// Format prints a placeholder for every verb, so that a SenderSetup never
// reaches a log or an error through fmt (which would otherwise print its
// unexported fields).
func (s SenderSetup) Format(f fmt.State, verb rune) { fmt.Fprint(f, "kos.SenderSetup{redacted}") }

// Format prints a placeholder for every verb.
func (r ReceiverSetup) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, "kos.ReceiverSetup{redacted}")
}

// Format prints a placeholder for every verb.
func (o SenderOutput) Format(f fmt.State, verb rune) { fmt.Fprint(f, "kos.SenderOutput{redacted}") }

// Format prints a placeholder for every verb.
func (o ReceiverOutput) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, "kos.ReceiverOutput{redacted}")
}
