package channel_test

import (
	"fmt"

	"github.com/keymesh/keymesh/internal/channel"
)

// An issuer invites a holder with a QR code, and they talk through a relay
// that only carries bytes.
func Example() {
	// The issuer (inviter) shows the invite's text as a QR code.
	invite, _ := channel.NewInvite(nil)
	qr := invite.Text()

	// The holder (joiner) scans it and sends a hello through the relay,
	// addressed to the invite's mailbox.
	scanned, _ := channel.ParseInvite(qr)
	joining, hello, _ := scanned.Join(nil)

	// The issuer accepts the hello; its welcome goes back through the relay.
	issuer, welcome, _ := invite.Accept(hello, nil)
	holder, _ := joining.Finish(welcome)

	msg, _ := issuer.Seal([]byte(`{"credential":"…"}`))
	got, _, err := holder.Open(msg)
	fmt.Println(string(got), err)
	fmt.Println(issuer.Mailbox() == holder.Mailbox())
	// Output:
	// {"credential":"…"} <nil>
	// true
}
