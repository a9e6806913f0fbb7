package replica

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by an Applier's error when a record fails
// validation (bad signature, broken chain of authority, unknown parent...).
// The replica refuses such a record and, in catch-up, skips it.
var ErrInvalid = errors.New("replica: invalid record")

// ErrDuplicate is wrapped by an Applier's error when a record's change is
// already applied under another encoding (the same body with another
// proof: a re-signed or re-proven copy). The replica acknowledges such a
// record as stored, but neither stores nor forwards the copy, so copies of
// an applied change (with any proof, or none that verifies) cannot grow a
// node's log.
var ErrDuplicate = errors.New("replica: change already applied")

// ErrMissing is wrapped (together with ErrInvalid) by an Applier's error
// when a record cannot be applied yet because it depends on a record this
// node has not applied (its scope, its account, the credential or config
// that signed it). The replica refuses it like an invalid record, but
// keeps a copy received from a peer (at most MaxPendingPerPeer per peer)
// and applies it again whenever records are applied, instead of skipping
// it for good.
var ErrMissing = errors.New("replica: record depends on one not applied yet")

// PeerFailure is one peer that did not store a record.
type PeerFailure struct {
	Peer uint16
	// Down is true when the peer could not be reached (or did not answer in
	// time); false when it answered with a refusal.
	Down bool
	// Reason is the transport error or the peer's refusal text (untrusted:
	// the peer wrote it).
	Reason string
}

func (f PeerFailure) String() string {
	if f.Down {
		return fmt.Sprintf("peer %d is down: %s", f.Peer, f.Reason)
	}
	return fmt.Sprintf("peer %d refused: %s", f.Peer, f.Reason)
}

// QuorumError reports a Submit that could not reach the write quorum: the
// record is stored on Stored nodes (this one included) of N, Need were
// required, and Failures names each peer that refused it or was down.
// Callers find it with errors.As.
type QuorumError struct {
	ID       ID
	Stored   int
	Need     int
	N        int
	Failures []PeerFailure
}

func (e *QuorumError) Error() string {
	fs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		fs[i] = f.String()
	}
	return fmt.Sprintf("replica: record %s stored on %d of %d nodes, %d needed: %s",
		e.ID.Short(), e.Stored, e.N, e.Need, strings.Join(fs, "; "))
}

// Refused returns the ids of the peers that refused the record.
func (e *QuorumError) Refused() []uint16 { return e.peers(false) }

// Down returns the ids of the peers that could not be reached.
func (e *QuorumError) Down() []uint16 { return e.peers(true) }

func (e *QuorumError) peers(down bool) []uint16 {
	var ids []uint16
	for _, f := range e.Failures {
		if f.Down == down {
			ids = append(ids, f.Peer)
		}
	}
	return ids
}
