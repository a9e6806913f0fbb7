package channel

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem"
)

// Channel is one party's end of an established channel. Seal and Rotate
// make messages for the peer, in the order they are to be delivered; Open
// takes the peer's messages in the order they were made. A Channel is not
// safe for concurrent use.
type Channel struct {
	k    secrets
	role Role
	rand io.Reader

	own  keyPair
	old  []keyPair // own keys rotated away, until the peer answers under own
	peer kem.PublicKey

	sent, received uint64 // the next sequence numbers out and in
}

func newChannel(k secrets, role Role, own keyPair, peer kem.PublicKey, rnd io.Reader) *Channel {
	return &Channel{k: k, role: role, rand: rnd, own: own, peer: peer}
}

// Format prints nothing secret, whatever the verb.
func (c Channel) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "channel.Channel{%s, mailbox %s, sent %d, received %d}", c.role, c.k.mailbox, c.sent, c.received)
}

// Role is this party's side.
func (c *Channel) Role() Role { return c.role }

// Mailbox is the relay's id for the channel.
func (c *Channel) Mailbox() Mailbox { return c.k.mailbox }

// info is the HPKE info of every message of the channel.
func (c *Channel) info() []byte {
	return append([]byte(label+" message\x00"), c.k.mailbox[:]...)
}

// aad binds a message to the channel, its sender's role, its type and its
// place.
func (c *Channel) aad(sender Role, header []byte) []byte {
	b := append([]byte(label+" aad\x00"), c.k.mailbox[:]...)
	b = append(b, byte(sender))
	return append(b, header...)
}

// Seal makes the next message carrying plaintext (at most MaxPlaintext
// bytes) for the peer.
func (c *Channel) Seal(plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("channel: a message holds at most %d bytes, got %d", MaxPlaintext, len(plaintext))
	}
	return c.seal(typeData, plaintext)
}

// Rotate replaces this party's key: it returns the message announcing the
// new key, sealed under the current one, to be delivered in its place
// like any other; later messages come from the new key. The old key still
// opens the peer's messages until one arrives under the new key (the peer
// may have sealed some before it read the rotation). At most 4 rotations
// may wait for the peer's answer.
func (c *Channel) Rotate() ([]byte, error) {
	if len(c.old) >= maxUnacked {
		return nil, fmt.Errorf("channel: %d rotations wait for the peer's answer; rotate again after it", len(c.old))
	}
	next, err := newKeyPair(c.rand)
	if err != nil {
		return nil, err
	}
	msg, err := c.seal(typeRotate, next.raw[:])
	if err != nil {
		return nil, err
	}
	c.old = append(c.old, c.own)
	c.own = next
	return msg, nil
}

func (c *Channel) seal(typ byte, plaintext []byte) ([]byte, error) {
	header := make([]byte, headerLen, headerLen+encLen+len(plaintext)+tagLen)
	header[0], header[1] = version, typ
	binary.BigEndian.PutUint64(header[2:], c.sent)
	enc, ct, err := sealAuthPSK(c.rand, c.peer, c.own.sk, c.k.psk[:], c.k.mailbox[:], c.info(), c.aad(c.role, header), plaintext)
	if err != nil {
		return nil, err
	}
	c.sent++
	msg := append(header, enc...)
	return append(msg, ct...), nil
}

// Open checks the peer's next message and returns its plaintext. A
// message announcing the peer's new key (its Rotate) returns rotated true
// and no plaintext. A message that is malformed (ErrMalformed), not
// authentic (ErrNotAuthentic) or out of order (*OrderError) changes
// nothing.
func (c *Channel) Open(msg []byte) (plaintext []byte, rotated bool, err error) {
	if len(msg) < headerLen+encLen+tagLen || len(msg) > MaxMessage {
		return nil, false, fmt.Errorf("%w: a message is %d to %d bytes, got %d", ErrMalformed, headerLen+encLen+tagLen, MaxMessage, len(msg))
	}
	header, enc, ct := msg[:headerLen], msg[headerLen:headerLen+encLen], msg[headerLen+encLen:]
	if header[0] != version || header[1] != typeData && header[1] != typeRotate {
		return nil, false, fmt.Errorf("%w: version %d type %d", ErrMalformed, header[0], header[1])
	}
	// Authenticity first: an order error must not be a way to probe
	// sequence numbers with forged messages.
	pt, key, err := c.open(header, enc, ct)
	if err != nil {
		return nil, false, err
	}
	if seq := binary.BigEndian.Uint64(header[2:]); seq != c.received {
		return nil, false, &OrderError{Want: c.received, Got: seq}
	}
	var peer kem.PublicKey
	if header[1] == typeRotate {
		if len(pt) != keyLen {
			return nil, false, fmt.Errorf("%w: a rotation carries a %d-byte key", ErrMalformed, keyLen)
		}
		if peer, err = peerKey(c.own, pt); err != nil {
			return nil, false, err
		}
	}
	// Accepted: from here on, state changes.
	c.received++
	if key == len(c.old) {
		// Under our newest key: the peer has read our rotations.
		for i := range c.old {
			c.old[i] = keyPair{}
		}
		c.old = nil
	}
	if peer != nil {
		c.peer = peer
		return nil, true, nil
	}
	return pt, false, nil
}

// open opens ct under our newest key, then the older ones still kept, and
// returns which opened it (len(c.old) for the newest).
func (c *Channel) open(header, enc, ct []byte) ([]byte, int, error) {
	aad := c.aad(c.role.peer(), header)
	for i := len(c.old); i >= 0; i-- {
		own := c.own
		if i < len(c.old) {
			own = c.old[i]
		}
		if pt, err := openAuthPSK(own.sk, c.peer, c.k.psk[:], c.k.mailbox[:], c.info(), aad, enc, ct); err == nil {
			return pt, i, nil
		}
	}
	return nil, 0, ErrNotAuthentic
}

// sealAuthPSK is one HPKE single-shot encryption in AuthPSK mode (RFC 9180
// §5.1.4 SetupAuthPSKS, then §5.2 Seal with sequence number 0): the
// ephemeral key is drawn from rnd.
func sealAuthPSK(rnd io.Reader, pkR kem.PublicKey, skS kem.PrivateKey, psk, pskID, info, aad, pt []byte) (enc, ct []byte, err error) {
	s, err := suite.NewSender(pkR, info)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: %w", err)
	}
	enc, sealer, err := s.SetupAuthPSK(rnd, skS, psk, pskID)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: sealing: %w", err)
	}
	ct, err = sealer.Seal(pt, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: sealing: %w", err)
	}
	return enc, ct, nil
}

// openAuthPSK opens what sealAuthPSK made (RFC 9180 §5.1.4 SetupAuthPSKR,
// §5.2 Open).
func openAuthPSK(skR kem.PrivateKey, pkS kem.PublicKey, psk, pskID, info, aad, enc, ct []byte) ([]byte, error) {
	r, err := suite.NewReceiver(skR, info)
	if err != nil {
		return nil, err
	}
	opener, err := r.SetupAuthPSK(enc, psk, pskID, pkS)
	if err != nil {
		return nil, err
	}
	return opener.Open(ct, aad)
}
