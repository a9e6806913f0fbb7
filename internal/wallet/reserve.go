package wallet

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/transport"
)

// reservation makes one client request's approval count once across the
// cluster, whichever gateways it is replayed to (DESIGN.md, "Quorums
// against a malicious gateway"; issue 12, finding 4). Each node records an
// approval's nonces in its own store (auth.Authorize), so on its own a
// nonce stops replays only at the nodes that saw it: on 4 nodes with t = 2
// a header replayed to another gateway could be signed by a disjoint
// signer set.
//
// Before the gateway invites its signers, the nonces must be recorded for
// this request by auth.ReserveQuorum(n, t) = n−t+1 of the key's n holders:
// the signers themselves (the gateway has already authorised; each
// co-signer authorises before its first protocol message) and, when the
// signers are fewer, other holders asked with an auth.KindReserve call, in
// parallel. The signer set of any other request shares a node with that
// quorum, which refuses whichever request comes second: either a signer
// there refuses to sign, or a reservation here fails and no signer is
// invited. A race between two replays may end with no signature at all;
// that is failing closed.
//
// When n ≤ 2t−1 the t signers are already a quorum and nothing is sent (3
// nodes, t = 2: no extra message). Otherwise signing needs n−t+1 reachable
// holders, as a record write does.
//
// A reservation is only accepted for an approval that verifies at the
// reserving node, and is idempotent for the same request id: the gateway's
// second attempt (another signer set, signAs) reuses the nodes that
// already answered and reserves only what is still missing.
type reservation struct {
	s       *Service
	op      auth.Operation
	proofs  string
	parties []uint16 // the key's holders
	t       int
	done    map[uint16]bool // holders that recorded the nonces for this request
}

// newReservation prepares the reservation of the approvals in proofs for
// signing p with w under request id req.
func (s *Service) newReservation(w *wallet, p *Prepared, req [requestLen]byte, proofs string) *reservation {
	op := auth.Operation{Scope: w.rec.Scope, Account: w.rec.Account, Method: p.Method, Hash: p.Hash(), Request: req}
	return &reservation{s: s, op: op, proofs: proofs, parties: w.rec.Parties, t: w.rec.Threshold, done: map[uint16]bool{}}
}

// reservePlan returns how many holders beyond signers must still record
// the nonces (need), and which holders may be asked (candidates: neither a
// signer nor already done, in parties' order). It is a pure function of
// the shape, for the tests: with n = len(parties), |signers| = t and done
// empty, need is max(0, n−2t+1).
func reservePlan(parties []uint16, t int, signers []round.PartyID, done map[uint16]bool) (need int, candidates []uint16) {
	have := len(signers)
	for _, id := range parties {
		switch {
		case slices.Contains(signers, round.PartyID(id)):
		case done[id]:
			have++
		default:
			candidates = append(candidates, id)
		}
	}
	return max(0, auth.ReserveQuorum(len(parties), t)-have), candidates
}

// cover makes sure that, with signers, a quorum of holders has recorded
// the nonces before any signer is invited. It returns nil at once when the
// signers are a quorum. Otherwise it asks the reachable candidates, in
// parallel, as many as are missing, and more if some fail; a refusal for
// replay ends it at once (api.CodeAuthReplay for the client), as does
// running out of candidates (the first refusal's code, or
// api.CodeUnavailable).
func (r *reservation) cover(ctx context.Context, signers []round.PartyID) error {
	need, cands := reservePlan(r.parties, r.t, signers, r.done)
	if need == 0 {
		return nil
	}
	t0 := time.Now()
	defer func() { r.s.stats.ReserveNanos.Add(uint64(time.Since(t0))) }()
	up, down := r.s.reachable()
	// Reachable candidates first, rotating among them to spread the load;
	// those seen down last (their link may just have come back).
	var first, last []uint16
	for _, id := range cands {
		if slices.Contains(down, id) || !slices.Contains(up, id) {
			last = append(last, id)
		} else {
			first = append(first, id)
		}
	}
	if len(first) > 0 {
		k := int(r.s.rr.Load()) % len(first)
		first = append(first[k:], first[:k]...)
	}
	cands = append(first, last...)

	ctx, cancel := context.WithTimeout(ctx, r.s.signTimeout)
	defer cancel()
	body := auth.EncodeReservation(r.op, r.proofs)
	var refused error // the first refusal other than a replay, or the first failure
	for need > 0 {
		if len(cands) < need {
			return r.short(need, refused)
		}
		batch := cands[:need]
		cands = cands[need:]
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, id := range batch {
			wg.Go(func() {
				_, errs[i] = r.s.tr.Call(ctx, id, auth.KindReserve, body)
			})
		}
		wg.Wait()
		r.s.stats.Reservations.Add(uint64(len(batch)))
		var replay *peerRefusal
		for i, id := range batch {
			err := errs[i]
			if err == nil {
				r.done[id] = true
				need--
				continue
			}
			if pr := asRefusal(err); pr != nil {
				if code, _ := pr.split(); code == api.CodeAuthReplay && replay == nil {
					replay = pr
				}
				err = pr
			}
			r.s.log.Warn("approval reservation failed", "peer", id, "err", err)
			if refused == nil {
				refused = err
			}
		}
		if replay != nil {
			_, msg := replay.split()
			return api.Errorf(api.CodeAuthReplay, "node %d refused to record the approval: %s", replay.peer, clip(msg))
		}
		if ctx.Err() != nil {
			return r.short(need, refused)
		}
	}
	return nil
}

// short is cover's error when fewer than a quorum recorded the nonces.
func (r *reservation) short(need int, cause error) error {
	var pr *peerRefusal
	if errors.As(cause, &pr) {
		code, msg := pr.split()
		return api.Errorf(code, "node %d refused to record the approval: %s", pr.peer, clip(msg))
	}
	q := auth.ReserveQuorum(len(r.parties), r.t)
	return api.Errorf(api.CodeUnavailable, "signing needs the approval recorded on %d of %d nodes first; %d more could not be reached", q, len(r.parties), need)
}

// asRefusal returns a peer handler's refusal of err as a *peerRefusal
// (whose split gives the client's code), or nil for any other failure.
func asRefusal(err error) *peerRefusal {
	var re *transport.RemoteError
	if errors.As(err, &re) {
		return &peerRefusal{peer: re.Peer, msg: re.Message}
	}
	return nil
}
