package wallet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/transport"
)

// authorize asks auth whether proofs approve p for w's owner, and checks
// that they speak for that owner.
func (s *Service) authorize(ctx context.Context, w *wallet, p *Prepared, req [requestLen]byte, proofs string) error {
	if p.Method == api.MethodSignDigest && (s.raw == nil || !s.raw(ctx, w.rec.Scope)) {
		return api.Errorf(api.CodeRejected, "%s is not enabled for scope %s: raw digests can be transactions; use personal_sign, eth_signTypedData_v4 or eth_signTransaction", p.Method, w.rec.Scope)
	}
	t0 := time.Now()
	op := auth.Operation{Scope: w.rec.Scope, Account: w.rec.Account, Method: p.Method, Hash: p.Hash(), Request: req}
	pr, err := s.authorizeOp(ctx, op, proofs)
	s.stats.AuthNanos.Add(uint64(time.Since(t0)))
	if err != nil {
		return err
	}
	if pr.Scope != w.rec.Scope || pr.Account != w.rec.Account {
		return api.Errorf(api.CodeUnauthorized, "%s: the approval speaks for another account", p.Method)
	}
	return nil
}

// clientError turns an error from auth or a peer into what the client sees:
// *api.Error passes through, anything else is internal (logged by httpapi).
func clientError(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return err
}

// signRPC serves personal_sign, eth_signTypedData_v4, eth_signTransaction
// and keymesh_signDigest as the gateway.
//
// It authorizes before it looks the address up, so that the answer says
// nothing about whether an address is a wallet on this node to anyone but
// its owner: the approval commits to the address (api.OperationHash), so
// the operation is authorized for whichever account the proofs speak for,
// and only then must that account hold the address. An unknown address and
// another account's address get the same error (errNotYours).
func (s *Service) signRPC(method string) httpapi.Handler {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		t0 := time.Now()
		p, err := Prepare(method, params, s.chains)
		if err != nil {
			return nil, err
		}
		s.stats.PrepNanos.Add(uint64(time.Since(t0)))
		var req [requestLen]byte
		fresh(req[:])
		proofs := httpapi.Proofs(ctx)
		t1 := time.Now()
		op := auth.Operation{Method: p.Method, Hash: p.Hash(), Request: req}
		op.Scope = s.claimedScope(proofs, op.Method, op.Hash) // the account: the one the proofs name
		if err := s.peekSlot(ctx, op.Scope, workSign); err != nil {
			return nil, err // before the approval is recorded: it can be sent again
		}
		refund, err := s.takeRate(ctx, op.Scope)
		if err != nil {
			return nil, err // the same
		}
		w, err := s.authorizeSign(ctx, method, op, proofs, p)
		s.stats.AuthNanos.Add(uint64(time.Since(t1)))
		if err != nil {
			refund()
			return nil, err
		}
		if w.rec.Scope != op.Scope {
			// The approvals did not name the approving scope up front
			// (proofs of an odd shape): its token is taken now, after the
			// approval was recorded.
			refund()
			if _, err := s.takeRate(ctx, w.rec.Scope); err != nil {
				return nil, err
			}
		}
		sig, err := s.signAs(ctx, w, p, params, req, proofs)
		if err != nil {
			return nil, err
		}
		s.stats.Signs.Add(1)
		return p.result(sig)
	}
}

// authorizeSign authorises op and returns the wallet at p.Address that
// the approving account holds.
func (s *Service) authorizeSign(ctx context.Context, method string, op auth.Operation, proofs string, p *Prepared) (*wallet, error) {
	pr, err := s.authorizeOp(ctx, op, proofs)
	if err != nil {
		return nil, clientError(err)
	}
	w, err := s.load(ctx, p.Address)
	if errors.Is(err, errNoAccount) || err == nil && (w.rec.Scope != pr.Scope || w.rec.Account != pr.Account) {
		return nil, errNotYours(method, p.Address)
	} else if err != nil {
		return nil, err
	}
	if p.Method == api.MethodSignDigest && (s.raw == nil || !s.raw(ctx, w.rec.Scope)) {
		return nil, api.Errorf(api.CodeRejected, "%s is not enabled for scope %s: raw digests can be transactions; use personal_sign, eth_signTypedData_v4 or eth_signTransaction", p.Method, w.rec.Scope)
	}
	return w, nil
}

// errNotYours is signRPC's answer when the approving account does not hold
// addr, whether addr is another account's or no account's: one error, so
// that it does not tell which.
func errNotYours(method string, addr common.Address) error {
	return api.Errorf(api.CodeAuthWrongScope, "%s: the approving account holds no wallet with address %s", method, addr.Hex())
}

// signAs runs the signing as gateway: up to two attempts, the second with
// another set of signers if a signer was down or stalled during the first.
// Each attempt has a fresh nonce, hence a fresh session id: a DKLs23 nonce is
// never reused.
//
// A try refused as busy, by this node's scheduler or by a co-signer's
// (schedule.go), is not an attempt: the gateway waits (busyRetry) and
// tries again, with the same request id, so the approval's nonces are
// recorded for this one request only, however many tries it takes; the
// client gets api.CodeBusy when the request's deadline comes first. If
// by then no other node can have recorded the approval (no reservation
// was made and no co-signer got past its busy check), the gateway
// forgets it too (Releaser), so that the client's retry of the same
// request is not refused as a replay.
func (s *Service) signAs(ctx context.Context, w *wallet, p *Prepared, params json.RawMessage, req [requestLen]byte, proofs string) ([]byte, error) {
	exclude := map[uint16]bool{}
	rsv := s.newReservation(w, p, req, proofs) // the approval counts once cluster-wide (reserve.go)
	retry := s.newBusyRetry(ctx, workSign)
	othersMayHold := false // another node may have recorded the approval
	giveUp := func(err error) error {
		if _, busy := api.BusyRetryAfter(err); busy && !othersMayHold && len(rsv.done) == 0 {
			s.releaseApproval(rsv.op, proofs)
		}
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 2; {
		acquire := s.sched.acquire
		if retry.tries > 0 {
			acquire = s.sched.reacquire
		}
		sl, berr := acquire(w.rec.Scope, workSign, 0)
		if berr != nil {
			s.stats.BusyRefused.Add(1)
			if err := retry.wait(ctx, berr); err != nil {
				return nil, giveUp(err)
			}
			continue
		}
		signers, perr := s.pickSigners(w, exclude)
		if perr != nil {
			sl.release()
			if lastErr != nil {
				return nil, api.Errorf(api.CodeUnavailable, "%s; then %s", errText(lastErr), perr.Message)
			}
			return nil, perr
		}
		if err := rsv.cover(ctx, signers); err != nil {
			sl.release()
			return nil, err
		}
		sig, err := s.signOnce(ctx, w, p, params, req, proofs, signers)
		s.auditOp(ctx, audit.KindSign, signOp(w, p, req), proofs, signers, err)
		if isBusy(err) {
			sl.refund() // a co-signer refused: no session ran, no CPU to charge
		}
		sl.release()
		if err == nil {
			return sig, nil
		}
		if !isBusy(err) || len(signers) > 2 {
			// A co-signer got past its busy check, or (with several
			// co-signers) one may have while another refused.
			othersMayHold = true
		}
		if isBusy(err) && ctx.Err() == nil {
			if err := retry.wait(ctx, err); err != nil {
				return nil, giveUp(err)
			}
			continue
		}
		peer, blamed := peerErr(err)
		if !blamed || attempt == 1 || ctx.Err() != nil {
			return nil, s.signFailure(err)
		}
		s.log.Warn("signing attempt failed; retrying with another signer set", "peer", peer, "err", err)
		s.stats.Retries.Add(1)
		exclude[peer] = true
		lastErr = err
		attempt++
	}
	return nil, s.signFailure(lastErr)
}

// releaseApproval has the authorizer forget the nonces this node recorded
// for op (see signAs). On failure the approval stays spent: the client
// approves again.
func (s *Service) releaseApproval(op auth.Operation, proofs string) {
	r, ok := s.auth.(Releaser)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ReleaseNonces(ctx, op, proofs); err != nil {
		s.log.Warn("could not give a busy request's approval back", "err", err)
		return
	}
	s.stats.Released.Add(1)
}

func errText(err error) string {
	if peer, ok := peerErr(err); ok {
		var te *transport.TimeoutError
		if errors.As(err, &te) {
			return fmt.Sprintf("node %d did not answer in time", peer)
		}
		return fmt.Sprintf("node %d is unreachable", peer)
	}
	return "signing failed"
}

// signFailure maps a failed attempt to the client's error.
func (s *Service) signFailure(err error) error {
	var pe *peerRefusal
	if errors.As(err, &pe) {
		code, msg := pe.split()
		return api.Errorf(code, "node %d refused to sign: %s", pe.peer, clip(msg))
	}
	if _, ok := peerErr(err); ok {
		return api.Errorf(api.CodeUnavailable, "%s: not enough signers", errText(err))
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.CodeUnavailable, "signing timed out")
	}
	return err
}

// peerRefusal is a co-signer's handler refusing the invitation.
type peerRefusal struct {
	peer uint16
	msg  string
}

func (e *peerRefusal) Error() string {
	return fmt.Sprintf("wallet: node %d refused: %s", e.peer, e.msg)
}

// split returns the JSON-RPC code a co-signer gave for its refusal (see
// refusal) and the rest of its message. The text comes from a peer: only
// the codes of client errors are taken from it, anything else is
// CodeRejected.
func (e *peerRefusal) split() (int, string) {
	var code int
	var rest string
	if i := strings.IndexByte(e.msg, ']'); strings.HasPrefix(e.msg, "[") && i > 0 {
		if c, err := strconv.Atoi(e.msg[1:i]); err == nil {
			code, rest = c, strings.TrimPrefix(e.msg[i+1:], " ")
		}
	}
	switch {
	case code <= -32010 && code >= -32099, // auth's codes (api/auth.go) and later services'
		code == api.CodeUnauthorized, code == api.CodeUserRejected, code == api.CodeRejected,
		code == api.CodeNotFound, code == api.CodeInvalidInput, code == api.CodeInvalidParams, code == api.CodeLimitExceeded,
		code == api.CodeBusy:
		return code, rest
	}
	if e.msg == "busy" {
		// The peer's transport: this node already runs its share of
		// handlers there (transport.maxConcurrentCalls). Retryable.
		return api.CodeBusy, "too many calls from this node in progress"
	}
	return api.CodeRejected, e.msg
}

// pickSigners returns this node and t−1 reachable peers that hold a share of
// w and are not excluded, rotating among them to spread the load.
func (s *Service) pickSigners(w *wallet, exclude map[uint16]bool) ([]round.PartyID, *api.Error) {
	up, down := s.reachable()
	var cands []uint16
	for _, id := range up {
		if !exclude[id] && slices.Contains(w.rec.Parties, id) && !w.share.Refused(round.PartyID(id)) {
			cands = append(cands, id)
		}
	}
	need := w.rec.Threshold - 1
	if len(cands) < need {
		for id := range exclude {
			if !slices.Contains(down, id) {
				down = append(down, id)
			}
		}
		slices.Sort(down)
		return nil, api.Errorf(api.CodeUnavailable, "signing needs %d nodes; %d reachable (nodes down: %v)", w.rec.Threshold, len(cands)+1, down)
	}
	start := int(s.rr.Add(1))
	signers := []round.PartyID{s.self()}
	for i := range need {
		signers = append(signers, round.PartyID(cands[(start+i)%len(cands)]))
	}
	slices.Sort(signers)
	return signers, nil
}

// signOnce runs one signing attempt with the given signers: it invites the
// co-signers and runs its own session at the same time; a co-signer that
// refuses or fails ends the attempt at once.
func (s *Service) signOnce(ctx context.Context, w *wallet, p *Prepared, params json.RawMessage, req [requestLen]byte, proofs string, signers []round.PartyID) ([]byte, error) {
	inv := signInvite{Method: p.Method, Params: params, Proofs: proofs, Request: req, Signers: signers}
	fresh(inv.Nonce[:])
	sess, err := sign.NewSession(w.share, signers, p.Digest[:], inv.Nonce[:], rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	body := inv.marshal()
	ctx, cancel := context.WithTimeout(ctx, s.signTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		callErr  error               // the first co-signer failure
		answered = map[uint16]bool{} // co-signers whose session ended
	)
	for _, id := range signers {
		if id == s.self() {
			continue
		}
		go func() {
			_, err := s.tr.Call(ctx, uint16(id), kindSign, body)
			if err == nil || isPeerFailure(err) {
				mu.Lock()
				answered[uint16(id)] = true
				mu.Unlock()
			}
			if err == nil || ctx.Err() != nil && !isPeerFailure(err) {
				return
			}
			var re *transport.RemoteError
			if errors.As(err, &re) {
				err = &peerRefusal{peer: re.Peer, msg: re.Message}
			}
			mu.Lock()
			if callErr == nil {
				callErr = err
			}
			mu.Unlock()
			cancel()
		}()
	}
	t0 := time.Now()
	res, err := s.run(s.gated(ctx, w.rec.Scope), sign.Protocol, sess)
	s.stats.DKLs23Nanos.Add(uint64(time.Since(t0)))
	if err != nil {
		cancel()
		mu.Lock()
		pe := callErr
		var running []uint16
		for _, id := range signers {
			if id != s.self() && !answered[uint16(id)] {
				running = append(running, uint16(id))
			}
		}
		mu.Unlock()
		// Co-signers still in their session can stop now (abort.go).
		s.abortPeers(running, inv.Nonce)
		if c := sign.Cheaters(err); len(c) > 0 {
			s.refuse(w, c)
		} else if pe != nil {
			err = pe // the co-signer's failure is the cause of ours
		}
		return nil, err
	}
	sig := res.(*dkls23.Signature)
	if sig.V > 1 {
		return nil, errors.New("wallet: signature with x(R) ≥ q cannot be expressed for Ethereum") // probability ~2^-128
	}
	return sig.Ethereum(), nil
}

func isPeerFailure(err error) bool {
	var re *transport.RemoteError
	var pd *transport.PeerDownError
	return errors.As(err, &re) || errors.As(err, &pd)
}

// refuse records that peers were caught cheating with w's share, so that
// this node never again uses its OT correlations with them (see
// sign.Cheaters), and persists the share record.
//
// The refusal is made on the live share, the one every session of this key
// reads (w.share, held in the cache): dkls23.Share.Refuse takes effect at
// once for open sessions too, and refusals only accumulate, so none is lost
// to a stale copy (issue 12, finding 3). It is then written to the store
// under w.persist (persistRefusals), so that it survives a restart.
func (s *Service) refuse(w *wallet, peers []round.PartyID) {
	for _, p := range peers {
		if err := w.share.Refuse(p); err != nil {
			s.log.Error("refuse cheating peer", "peer", p, "err", err)
		}
	}
	addr, _ := address(w.share)
	s.log.Warn("security: peers caught cheating in a signing session are refused for this key",
		"event", "peer_refused", "peers", peers, "address", addr.Hex())
	if err := s.persistRefusals(context.Background(), w); err != nil {
		// The refusal holds in this process; a restart before the next
		// successful write would lose it.
		s.log.Error("security: persist refusal", "address", addr.Hex(), "err", err)
	}
}

// handleSign is a co-signer's side of kindSign: it checks the invitation,
// recomputes the operation from the client's params, asks auth itself, and
// only then runs its session.
func (s *Service) handleSign(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	var inv signInvite
	if err := inv.unmarshal(body); err != nil {
		return nil, err
	}
	self := s.self()
	if !slices.Contains(inv.Signers, self) || !slices.Contains(inv.Signers, round.PartyID(from)) {
		return nil, errors.New("wallet: the signer set must hold the inviting node and this node")
	}
	p, err := Prepare(inv.Method, inv.Params, s.chains)
	if err != nil {
		return nil, refusal(err)
	}
	w, err := s.load(ctx, p.Address)
	if errors.Is(err, errNoAccount) {
		return nil, fmt.Errorf("wallet: no account with address %s", p.Address.Hex())
	} else if err != nil {
		s.log.Error("load wallet", "err", err)
		return nil, errors.New("wallet: internal error")
	}
	for _, id := range inv.Signers {
		if !slices.Contains(w.rec.Parties, uint16(id)) {
			return nil, fmt.Errorf("wallet: node %d holds no share of %s", id, p.Address.Hex())
		}
	}
	if len(inv.Signers) < w.rec.Threshold {
		return nil, fmt.Errorf("wallet: %d signers for a threshold of %d", len(inv.Signers), w.rec.Threshold)
	}
	// The scope's share of this node's signing sessions, before anything
	// is authorised: a busy refusal spends nothing of the approval, and
	// the gateway tries again (schedule.go).
	sl, berr := s.sched.acquire(w.rec.Scope, workSign, 0)
	if berr != nil {
		s.stats.BusyRefused.Add(1)
		return nil, refusal(berr)
	}
	defer sl.release()
	refund, rerr := s.takeCosignRate(ctx, w)
	if rerr != nil {
		s.log.Warn("refused to co-sign: the scope is over its signature rate", "gateway", from, "scope", w.rec.Scope)
		return nil, refusal(rerr)
	}
	if err := s.authorize(ctx, w, p, inv.Request, inv.Proofs); err != nil {
		refund()
		s.log.Warn("refused to co-sign: not authorised", "gateway", from, "method", p.Method, "err", err)
		s.auditOp(ctx, audit.KindCosign, signOp(w, p, inv.Request), inv.Proofs, inv.Signers, err)
		return nil, refusal(err)
	}
	sess, err := sign.NewSession(w.share, inv.Signers, p.Digest[:], inv.Nonce[:], rand.Reader)
	if err != nil {
		s.log.Warn("refused to co-sign", "gateway", from, "address", p.Address.Hex(), "err", err)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.signTimeout)
	defer cancel()
	untrack, err := s.track(from, inv.Nonce, cancel)
	if err != nil {
		return nil, err
	}
	defer untrack()
	_, err = s.run(s.gated(ctx, w.rec.Scope), sign.Protocol, sess)
	s.auditOp(ctx, audit.KindCosign, signOp(w, p, inv.Request), inv.Proofs, inv.Signers, err)
	if err != nil {
		if c := sign.Cheaters(err); len(c) > 0 {
			s.refuse(w, c)
		}
		// Names the inviting gateway beside the node's own line for a
		// refused repeat of a session id (node.ErrSessionRepeated).
		s.log.Warn("co-signing session failed", "gateway", from, "address", p.Address.Hex(), "err", err)
		return nil, fmt.Errorf("wallet: signing session: %w", err)
	}
	return nil, nil
}

// refusal is the text a co-signer returns to the gateway: "[code] message"
// of an *api.Error, the client-visible parts only, never an internal cause.
func refusal(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("[%d] %s", ae.Code, ae.Message)
	}
	return errors.New("wallet: refused")
}
