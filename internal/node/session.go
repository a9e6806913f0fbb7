package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/store"
)

// The durable session record (DESIGN.md, "Rules learned from attacking
// it": no party's secret is ever used twice under one session id).
//
// Every MPC session this node runs through RunSession is recorded before
// its Start, in one store transaction that reads the id and refuses it if
// present, then writes it. Start is what produces a session's first
// messages (round 1 is finalized there), so a repeated id is refused before
// this node sends anything derived from its secrets. The protocols mix
// each party's own fresh randomness into the session id as well (package
// round); the record is defence in depth, and holds even if a gateway
// repeats its nonce and that randomness failed or was switched off.
//
// Store layout:
//
//	node/session   hex(round.Session.ID()) (64 lower-case hex digits)
//	                 → sessionEntry (JSON: protocol, parties, first run)
//
// The key is the session's base id (the one messages are routed by), which
// hashes the protocol name, the parties, the threshold, the gateway's
// nonce and the protocol's own inputs (key id, digest), so the same
// invitation always maps to the same key whatever the parties' fresh
// contributions. It is not secret and neither is the entry.
//
// The transaction is store.Update: BEGIN IMMEDIATE on SQLite (one writer
// at a time) and SERIALIZABLE with retry on PostgreSQL, so several API
// processes of one node sharing one PostgreSQL database cannot both insert
// the same id: one of them sees a serialization failure, retries, and then
// finds the other's entry.
//
// Entries are kept as long as the shares they were used with. Nothing
// deletes them today (a share is never deleted either); a future refresh
// or reshare that retires a share may delete the entries of its sessions,
// and must not delete any other.
const sessionNS = "node/session"

// ErrSessionRepeated is wrapped by RunSession's error when the session's
// id is already in this node's record: the session was refused before it
// sent anything.
var ErrSessionRepeated = errors.New("node: this session id already ran on this node; a repeat is refused")

// sessionEntry is the value stored for a session id.
type sessionEntry struct {
	Protocol string    `json:"protocol"`
	Parties  []uint16  `json:"parties"`
	First    time.Time `json:"first"`
}

// recordSession checks that sid is not in st's session record and records
// it, atomically. A repeat is an error wrapping ErrSessionRepeated; any
// other error (the store failed) refuses the session too: the record is
// never skipped.
func recordSession(ctx context.Context, st store.Store, protocol string, sid round.SessionID, parties []round.PartyID) error {
	e := sessionEntry{Protocol: protocol, First: time.Now().UTC()}
	for _, p := range parties {
		e.Parties = append(e.Parties, uint16(p))
	}
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("node: session record: %w", err)
	}
	key := hex.EncodeToString(sid[:])
	err = st.Update(ctx, func(tx store.Ops) error {
		_, err := tx.Get(ctx, sessionNS, key)
		switch {
		case err == nil:
			return ErrSessionRepeated
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return tx.Put(ctx, sessionNS, key, val)
	})
	if errors.Is(err, ErrSessionRepeated) {
		return fmt.Errorf("%w (session %s…, protocol %s)", ErrSessionRepeated, key[:16], protocol)
	}
	if err != nil {
		return fmt.Errorf("node: session record: %w", err)
	}
	return nil
}

// checkSession records s in the node's session record before it starts
// (see sessionNS), and logs a refused repeat as a security event.
func (n *Node) checkSession(ctx context.Context, protocol string, s *round.Session) error {
	if n.sessionRecordOff.Load() {
		return nil // only ever set by a keymesh_adversary test build (adversary.go)
	}
	err := recordSession(ctx, n.store, protocol, s.ID(), s.Parties())
	if errors.Is(err, ErrSessionRepeated) {
		sid := s.ID()
		n.log.Warn("security: refused to run an MPC session id a second time",
			"event", "session_repeat", "protocol", protocol,
			"session", hex.EncodeToString(sid[:8]), "parties", s.Parties())
	}
	return err
}
