package baseot

import "fmt"

// Format prints a placeholder for every verb, so that OT keys never reach
// a log or an error through fmt.
func (o SenderOutput) Format(f fmt.State, verb rune) { fmt.Fprint(f, "baseot.SenderOutput{redacted}") }

// Format prints a placeholder for every verb.
func (o ReceiverOutput) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, "baseot.ReceiverOutput{redacted}")
}

// Format prints a placeholder for every verb.
func (s Sender) Format(f fmt.State, verb rune) { fmt.Fprint(f, "baseot.Sender{redacted}") }

// Format prints a placeholder for every verb.
func (k Key) Format(f fmt.State, verb rune) { fmt.Fprint(f, "baseot.Key{redacted}") }
