package channel

import (
	"errors"
	"testing"
)

// FuzzOpen: whatever bytes the relay delivers, Open does not panic, refuses
// them unless they are the peer's next message, and changes nothing when
// it refuses: the real next message still opens.
func FuzzOpen(f *testing.F) {
	ic, jc, _ := pair(f)
	m := seal(f, ic, "seed")
	f.Add(m)
	f.Add(m[:headerLen+encLen+tagLen])
	rot, _ := ic.Rotate()
	f.Add(rot)
	f.Add([]byte{version, typeData})
	f.Fuzz(func(t *testing.T, b []byte) {
		ic, jc, _ := pair(t)
		next := seal(t, ic, "next")
		if _, _, err := jc.Open(b); err == nil {
			t.Fatal("opened bytes the peer did not make")
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		mustOpen(t, jc, next, "next")
	})
	_ = jc
}

// FuzzHandshake: no bytes but the other party's make a handshake
// message accepted, and a refused one spends nothing.
func FuzzHandshake(f *testing.F) {
	inv, _ := NewInvite(nil)
	read, _ := ParseInvite(inv.Text())
	_, hello, _ := read.Join(nil)
	f.Add(hello)
	f.Add(hello[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, _ := NewInvite(nil)
		if _, _, err := inv.Accept(b, nil); err == nil {
			t.Fatal("accepted a hello made without the invite")
		}
		read, _ := ParseInvite(inv.Text())
		j, hello, err := read.Join(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Finish(b); err == nil {
			t.Fatal("finished with a welcome made without the invite")
		}
		_, welcome, err := inv.Accept(hello, nil)
		if err != nil {
			t.Fatalf("a refused hello spent the invite: %v", err)
		}
		if _, err := j.Finish(welcome); err != nil {
			t.Fatalf("a refused welcome broke the handshake: %v", err)
		}
	})
}

// FuzzParseInvite: an invite text that parses is exactly the canonical
// text of its secret.
func FuzzParseInvite(f *testing.F) {
	inv, _ := NewInvite(nil)
	f.Add(inv.Text())
	f.Add("kmrelay1:")
	f.Add("kmrelay1:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		read, err := ParseInvite(s)
		if err != nil {
			return
		}
		// Re-encode through an inviter holding the same secret.
		again := &Invite{role: Inviter, secret: secretOf(t, s)}
		if again.Text() != s {
			t.Fatal("a non-canonical invite text parsed")
		}
		if k, _ := derive(again.secret[:]); k.mailbox != read.Mailbox() {
			t.Fatal("mailbox differs")
		}
	})
}

func secretOf(t *testing.T, text string) [secretLen]byte {
	t.Helper()
	var s [secretLen]byte
	b, err := decodeText(text)
	if err != nil {
		t.Fatal(err)
	}
	copy(s[:], b)
	return s
}
