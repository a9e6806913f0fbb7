package api

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// The relay service (internal/relay) stores and forwards the messages of
// end-to-end channels between two parties, an issuer and a holder
// (internal/channel): opaque bytes it can neither read nor alter without
// the receiver noticing. A channel's messages live in a mailbox (the id
// both parties derive from their out-of-band secret) of a scope (the
// tenant whose budget they count against), one inbox per recipient.
//
//	keymesh_relayPost   RelayPostParams   → RelayPostResult  (stored here and forwarded to every peer)
//	keymesh_relayFetch  RelayFetchParams  → RelayFetchResult (this node's inbox after an index)
//
// Neither takes an approval: the mailbox id is unguessable (128 bits) and
// every message is end-to-end authenticated, so what a poster who is not
// the other party can do is fill an inbox, which the quotas below bound.
const (
	MethodRelayPost  = "keymesh_relayPost"
	MethodRelayFetch = "keymesh_relayFetch"

	// PeerRelayPost forwards a post to a peer: the body is
	// RelayPost.Marshal, the answer empty.
	PeerRelayPost = "relay/post/v1"

	// MaxRelayMessage bounds one message (the channel's largest, 512 KiB
	// of plaintext, fits; its base64 fits MaxBodyBytes).
	MaxRelayMessage = 512<<10 + 128
	// MaxRelayInbox and MaxRelayInboxBytes bound one inbox on a node;
	// an inbox is forgotten RelayInboxTTLHours after its last post.
	MaxRelayInbox      = 256
	MaxRelayInboxBytes = 8 << 20
	RelayInboxTTLHours = 24
	// MaxRelayFetch bounds the messages of one fetch.
	MaxRelayFetch = 64
)

// Relay recipients: whose inbox a message goes to.
const (
	RelayToInviter = "inviter"
	RelayToJoiner  = "joiner"
)

// RelayPostParams are keymesh_relayPost's params.
type RelayPostParams struct {
	Scope   string `json:"scope"`   // the tenant: 32 lowercase hex digits
	Mailbox string `json:"mailbox"` // 32 lowercase hex digits
	To      string `json:"to"`      // RelayToInviter or RelayToJoiner
	Message string `json:"message"` // base64url without padding, 1 to MaxRelayMessage bytes
}

// RelayPostResult says where the message went.
type RelayPostResult struct {
	Index  uint64 `json:"index"`  // its place in the answering node's inbox, from 1
	Stored int    `json:"stored"` // the nodes that hold it, the answering one included
}

// RelayFetchParams are keymesh_relayFetch's params.
type RelayFetchParams struct {
	Scope   string `json:"scope"`
	Mailbox string `json:"mailbox"`
	To      string `json:"to"`
	After   uint64 `json:"after"` // return messages with a greater index (0: from the first)
}

// RelayFetchResult is an inbox's messages after an index on the answering
// node, in the order it stored them, at most MaxRelayFetch.
type RelayFetchResult struct {
	Messages []RelayMessage `json:"messages"`
	More     bool           `json:"more,omitempty"` // fetch again after the last index
}

// RelayMessage is one stored message.
type RelayMessage struct {
	Index   uint64 `json:"index"`
	Message string `json:"message"` // base64url without padding
}

// RelayPost is the body of PeerRelayPost: scope (16 bytes) ‖ mailbox (16)
// ‖ recipient (1: 1 inviter, 2 joiner) ‖ message.
type RelayPost struct {
	Scope   [16]byte
	Mailbox [16]byte
	To      byte
	Message []byte
}

// ErrRelayPost is wrapped by DecodeRelayPost's errors.
var ErrRelayPost = errors.New("api: relay post")

// Marshal encodes p.
func (p *RelayPost) Marshal() []byte {
	b := make([]byte, 0, 33+len(p.Message))
	b = append(b, p.Scope[:]...)
	b = append(b, p.Mailbox[:]...)
	b = append(b, p.To)
	return append(b, p.Message...)
}

// DecodeRelayPost decodes a PeerRelayPost body strictly.
func DecodeRelayPost(b []byte) (*RelayPost, error) {
	if len(b) < 34 || len(b) > 33+MaxRelayMessage {
		return nil, fmt.Errorf("%w: %d bytes, want 34 to %d", ErrRelayPost, len(b), 33+MaxRelayMessage)
	}
	p := &RelayPost{To: b[32], Message: append([]byte(nil), b[33:]...)}
	copy(p.Scope[:], b[:16])
	copy(p.Mailbox[:], b[16:32])
	if p.To != 1 && p.To != 2 {
		return nil, fmt.Errorf("%w: recipient %d", ErrRelayPost, p.To)
	}
	return p, nil
}

// RelayTo returns the recipient byte of a RelayPost for to.
func RelayTo(to string) (byte, error) {
	switch to {
	case RelayToInviter:
		return 1, nil
	case RelayToJoiner:
		return 2, nil
	}
	return 0, fmt.Errorf("to must be %q or %q", RelayToInviter, RelayToJoiner)
}

// ParseRelayID decodes a scope or mailbox id: 32 lowercase hex digits.
func ParseRelayID(name, s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 32 {
		return id, fmt.Errorf("%s must be 32 lowercase hex digits", name)
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return id, fmt.Errorf("%s must be 32 lowercase hex digits", name)
		}
	}
	hex.Decode(id[:], []byte(s))
	return id, nil
}
