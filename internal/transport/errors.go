package transport

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClosed is returned by every method once Close has been called.
var ErrClosed = errors.New("transport: closed")

// PeerDownError reports that a peer a session or call needs cannot be
// reached: the dial was refused or timed out, the TLS handshake failed, or
// the link was lost. Callers use errors.As to find which peer.
type PeerDownError struct {
	Peer uint16
	Err  error // the network or TLS error; never holds secrets
}

func (e *PeerDownError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("peer %d is down", e.Peer)
	}
	return fmt.Sprintf("peer %d is down: %v", e.Peer, e.Err)
}

func (e *PeerDownError) Unwrap() error { return e.Err }

// TimeoutError reports a session that did not finish in time, naming the
// parties whose messages it was still waiting for (round.Session.Waiting).
type TimeoutError struct {
	Round   uint16
	Waiting []uint16
	After   time.Duration
}

func (e *TimeoutError) Error() string {
	ids := make([]string, len(e.Waiting))
	for i, p := range e.Waiting {
		ids[i] = fmt.Sprint(p)
	}
	return fmt.Sprintf("timed out after %v in round %d waiting for peers %s", e.After.Round(time.Millisecond), e.Round, strings.Join(ids, ", "))
}

// Timeout reports true, as net.Error does for timeouts.
func (e *TimeoutError) Timeout() bool { return true }

// RemoteError is a peer's handler returning an error to Call. Message is
// the peer's error text, at most 1024 bytes of UTF-8; treat it as untrusted
// input.
type RemoteError struct {
	Peer    uint16
	Kind    string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("peer %d answered %q with an error: %s", e.Peer, e.Kind, e.Message)
}
