package audit

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Skipped appends (issue 16: "a node that skips appending is caught only by
// comparing co-signers' entries"). The chain proves that what a node logged
// was not changed afterwards; it cannot prove that the node logged
// everything. But no node signs or generates a key alone: every signature
// is a session of a signer set, every key generation one of all the
// parties, and each member logs it under the gateway's request id (the
// gateway as wallet.sign or wallet.keygen, the others as wallet.cosign or
// wallet.keygen.peer). CrossCheck compares the logs of several nodes: a
// node named in another's entry as a member of a session, whose own log
// holds no entry for that request, skipped an append (or lost it).
//
// What it cannot see: a session all of whose members skip (t colluding
// nodes, beyond the trust model), a node whose log is not given, and a
// request whose entries are younger than the grace below the newest entry
// of the given logs (its members may not have appended yet). Auth records
// are not compared: a record missing from one node's log may be one it has
// not caught up with yet; each applied record's entry commits in the
// record's own transaction.

// Grace is the default of how far below the newest entry of the compared
// logs a request must be to be checked: members append when their part of
// a session ends, not at one instant. Logs of stopped nodes need none.
const Grace = 30 * time.Second

// Skip is one append CrossCheck found missing.
type Skip struct {
	Node    uint16 // the node whose log lacks the entry
	Request [16]byte
	Kind    string // the kind of the entry that names it
	By      uint16 // the node whose entry names it
	Seq     uint64 // that entry's seq in By's log
	Time    time.Time
}

func (s Skip) String() string {
	return fmt.Sprintf("node %d has no entry for request %s: node %d's entry %d (%s at %s) names it as a member of the session",
		s.Node, hex.EncodeToString(s.Request[:]), s.By, s.Seq, s.Kind, s.Time.Format(time.RFC3339))
}

// CrossCheck compares the wallet entries of logs (each node's entries, by
// node id): every member of a session that an entry with outcome ok names
// must have an entry (any outcome) for the same request. It returns the
// appends missing, ordered by node and then by the naming entry's time.
// Entries younger than grace below the newest entry of the logs are not
// judged.
func CrossCheck(logs map[uint16][]*Entry, grace time.Duration) []Skip {
	type member struct {
		node uint16
		req  [16]byte
	}
	has := map[member]bool{}
	var end time.Time
	for id, es := range logs {
		for _, e := range es {
			if isSession(e.Kind) {
				has[member{id, e.Request}] = true
			}
		}
		if n := len(es); n > 0 && es[n-1].Time.After(end) {
			end = es[n-1].Time
		}
	}
	cutoff := end.Add(-grace)
	seen := map[member]bool{}
	var out []Skip
	for _, by := range sortedIDs(logs) {
		for _, e := range logs[by] {
			// Only a session that succeeded had every member run it to
			// its end; a member that refused before running (busy, over
			// its rate) logs nothing, and a failed attempt names it.
			if !isSession(e.Kind) || e.Outcome != OutcomeOK || e.Time.After(cutoff) {
				continue
			}
			for _, m := range e.Signers {
				k := member{m, e.Request}
				if _, given := logs[m]; !given || m == by || has[k] || seen[k] {
					continue
				}
				seen[k] = true
				out = append(out, Skip{Node: m, Request: e.Request, Kind: e.Kind, By: by, Seq: e.Seq, Time: e.Time})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Skip) int {
		if a.Node != b.Node {
			return int(a.Node) - int(b.Node)
		}
		return a.Time.Compare(b.Time)
	})
	return out
}

// isSession reports whether kind is an entry of an MPC session, whose
// Signers are the session's members.
func isSession(kind string) bool {
	switch kind {
	case KindSign, KindCosign, KindKeygen, KindKeygenPeer:
		return true
	}
	return false
}

func sortedIDs(logs map[uint16][]*Entry) []uint16 {
	ids := make([]uint16, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
