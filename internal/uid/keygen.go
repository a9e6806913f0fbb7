package uid

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/oprf/dkg"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/transport"
)

// createOp is the operation a key creation is approved as (package doc).
func createOp(scope, account string, req [16]byte) auth.Operation {
	return auth.Operation{Scope: scope, Account: account, Method: api.MethodUIDCreateKey,
		Hash: api.UIDOperationHash(api.MethodUIDCreateKey, scope, nil), Request: req}
}

// authorizeCreate authorises a key creation for scope: the account's
// approval in its mode (auth), one of whose approvals bound to the
// operation is the developer's. auth verified every approval bound to the
// operation, developer keys against the scope's own config, so a
// developer proof among them is the scope's developer's.
func (s *Service) authorizeCreate(ctx context.Context, scope, account string, req [16]byte, proofs string) error {
	op := createOp(scope, account, req)
	if _, err := s.authorize(ctx, op, proofs); err != nil {
		return err
	}
	if !hasDeveloperApproval(proofs, op) {
		return api.Errorf(api.CodeAuthIncomplete, "%s needs the scope developer's approval", api.MethodUIDCreateKey)
	}
	return nil
}

// hasDeveloperApproval reports whether one of proofs' developer-signed
// approvals is bound to op (scope, account, method, hash). Call it only
// after auth accepted proofs for op.
func hasDeveloperApproval(proofs string, op auth.Operation) bool {
	ps, err := api.ParseProofs(proofs)
	if err != nil {
		return false
	}
	for _, p := range ps.Approvals {
		if p.Developer == "" {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(p.Approval)
		if err != nil {
			continue
		}
		a, err := record.DecodeApproval(raw)
		if err == nil && a.Method == op.Method && a.Hash == op.Hash && a.Scope == op.Scope && a.Account == op.Account {
			return true
		}
	}
	return false
}

// sessionID is the base session id of scope's key generation: the
// gateway's nonce and the scope, over all n nodes. Every node mixes its
// own randomness into it before round 1 (dkg.NewKeygen, round.Fresh).
func (s *Service) sessionID(scope string, nonce [32]byte) (round.SessionID, []round.PartyID, error) {
	parties := make([]round.PartyID, len(s.nodes))
	for i, id := range s.nodes {
		parties[i] = round.PartyID(id)
	}
	sid, err := dkg.KeygenSessionID(parties, s.t, append(nonce[:], scope...))
	return sid, parties, err
}

// runKeygen runs this node's part of scope's key generation and stores
// the share; it returns the public key's encoding.
func (s *Service) runKeygen(ctx context.Context, scope string, nonce [32]byte) ([]byte, *oprf.KeyShare, error) {
	sid, parties, err := s.sessionID(scope, nonce)
	if err != nil {
		return nil, nil, fmt.Errorf("uid: %w", err)
	}
	r, err := dkg.NewKeygen(sid, round.PartyID(s.self), parties, s.t)
	if err != nil {
		return nil, nil, fmt.Errorf("uid: %w", err)
	}
	sess, err := round.NewSession(sid, round.PartyID(s.self), parties, r)
	if err != nil {
		return nil, nil, fmt.Errorf("uid: %w", err)
	}
	res, err := s.run(ctx, dkg.KeygenProtocol, sess)
	if err != nil {
		return nil, nil, fmt.Errorf("uid: key generation: %w", err)
	}
	sh, ok := res.(*oprf.KeyShare)
	if !ok {
		return nil, nil, errors.New("uid: key generation returned no share")
	}
	if err := s.save(ctx, scope, sh); err != nil {
		sh.Zero()
		return nil, nil, err
	}
	pub, err := sh.Public().MarshalBinary()
	return pub, sh, err
}

// CreateKey serves keymesh_uidCreateKey as gateway: it runs scope's key
// generation among all n nodes, each authorising the request itself, and
// returns once every node stored its share of one key.
func (s *Service) CreateKey(ctx context.Context, p api.UIDCreateKeyParams) (*api.UIDKey, error) {
	const m = api.MethodUIDCreateKey
	if api.CheckUIDID("scope", p.Scope) != nil || api.CheckUIDID("account", p.Account) != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: scope and account must be 1 to %d bytes of UTF-8", m, api.MaxAccountIDLen)
	}
	if sh, err := s.share(ctx, p.Scope); err != nil {
		return nil, s.internalError(m, err)
	} else if sh != nil {
		return nil, api.Errorf(api.CodeAuthConflict, "%s: scope %s has a UID key already", m, p.Scope)
	}
	if s.running(p.Scope) { // before the approval is spent: the client may send it again
		return nil, api.Errorf(api.CodeBusy, "%s: a key generation for scope %s is running", m, p.Scope)
	}
	var down []uint16
	var up []uint16
	for _, peer := range s.tr.Peers() {
		if peer.Reachable {
			up = append(up, peer.ID)
		} else {
			down = append(down, peer.ID)
		}
	}
	if len(down) > 0 || len(up)+1 != len(s.nodes) {
		return nil, api.Errorf(api.CodeUnavailable, "%s needs all %d nodes; nodes down: %v", m, len(s.nodes), down)
	}
	inv := api.UIDKeygenInvite{Scope: p.Scope, Account: p.Account, Proofs: httpapi.Proofs(ctx)}
	rand.Read(inv.Request[:])
	rand.Read(inv.Nonce[:])
	if err := s.authorizeCreate(ctx, p.Scope, p.Account, inv.Request, inv.Proofs); err != nil {
		return nil, s.clientError(m, err)
	}
	release, err := s.lockScope(ctx, p.Scope)
	switch {
	case errors.Is(err, errBusy): // started since the check above: the approval is spent
		return nil, api.Errorf(api.CodeUnavailable, "%s: a key generation for scope %s is running; try again with a new approval", m, p.Scope)
	case errors.Is(err, errKeyExists):
		return nil, api.Errorf(api.CodeAuthConflict, "%s: scope %s has a UID key already", m, p.Scope)
	case err != nil:
		return nil, s.internalError(m, err)
	}
	defer release()

	ctx, cancel := context.WithTimeout(ctx, s.keygenTimeout)
	defer cancel()
	body := inv.Marshal()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		refused  = map[uint16]string{}
		failed   []uint16
		peerPubs = map[uint16][]byte{}
	)
	for _, id := range up {
		wg.Go(func() {
			out, err := s.tr.Call(ctx, id, api.PeerUIDKeygen, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				var re *transport.RemoteError
				switch {
				case errors.As(err, &re):
					refused[id] = re.Message
				case ctx.Err() != nil:
					// We cancelled (our own run failed, or another peer's
					// did): the cause is recorded there.
				default:
					failed = append(failed, id)
				}
				s.log.Warn("uid: peer did not complete the key generation", "peer", id, "scope", p.Scope, "err", err)
				cancel()
				return
			}
			peerPubs[id] = out
		})
	}
	pub, sh, err := s.runKeygen(ctx, p.Scope, inv.Nonce)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if err != nil || len(refused)+len(failed) > 0 {
		s.abortPeers(up, inv.Nonce) // those still waiting stop now
	}
	var (
		abort *round.AbortError
		gone  *transport.PeerDownError
		slow  *transport.TimeoutError
	)
	switch {
	case errors.As(err, &abort) && len(abort.Culprits) > 0:
		// The DKG named the parties whose messages failed their checks
		// (a share that does not match its commitments, a bad proof of
		// knowledge): no node outputs a share.
		s.log.Warn("uid: key generation aborted", "scope", p.Scope, "culprits", abort.Culprits, "err", err)
		culprits := make([]uint16, len(abort.Culprits))
		for i, c := range abort.Culprits {
			culprits[i] = uint16(c)
		}
		return nil, api.Errorf(api.CodeRejected, "%s: the key generation aborted; node(s) %v sent invalid messages", m, culprits)
	case len(refused) > 0:
		s.log.Warn("uid: key generation refused by peers", "scope", p.Scope, "refused", refused, "err", err)
		ids := make([]uint16, 0, len(refused))
		for id := range refused {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, api.Errorf(api.CodeRejected, "%s: node(s) %v refused the key generation", m, ids)
	case errors.Is(err, errKeyExists):
		return nil, api.Errorf(api.CodeAuthConflict, "%s: scope %s has a UID key already", m, p.Scope)
	case len(failed) > 0:
		s.log.Warn("uid: key generation failed", "scope", p.Scope, "peers", failed, "err", err)
		return nil, api.Errorf(api.CodeUnavailable, "%s: node(s) %v did not complete the key generation", m, failed)
	case errors.As(err, &gone):
		s.log.Warn("uid: key generation failed", "scope", p.Scope, "err", err)
		return nil, api.Errorf(api.CodeUnavailable, "%s needs all %d nodes; node %d went down", m, len(s.nodes), gone.Peer)
	case errors.As(err, &slow):
		s.log.Warn("uid: key generation failed", "scope", p.Scope, "err", err)
		return nil, api.Errorf(api.CodeUnavailable, "%s: node(s) %v did not take part in time", m, slow.Waiting)
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("uid: key generation failed", "scope", p.Scope, "err", err)
		return nil, api.Errorf(api.CodeUnavailable, "%s: the key generation timed out", m)
	case err != nil:
		return nil, s.internalError(m, err)
	}
	for id, b := range peerPubs {
		if !bytes.Equal(b, pub) {
			// The DKG's last round compares digests of the public key, so
			// an honest peer cannot disagree; a lying answer is logged.
			s.log.Error("uid: a peer answered another public key", "peer", id, "scope", p.Scope)
			return nil, s.internalError(m, fmt.Errorf("node %d answered another public key", id))
		}
	}
	s.log.Info("uid key created", "scope", p.Scope, "account", p.Account)
	return s.keyResult(p.Scope, sh), nil
}

func (s *Service) keyResult(scope string, sh *oprf.KeyShare) *api.UIDKey {
	pub, _ := sh.Public().MarshalBinary()
	return &api.UIDKey{Scope: scope, PublicKey: base64.RawURLEncoding.EncodeToString(pub),
		Threshold: sh.Public().Threshold(), N: len(sh.Public().IDs())}
}

// handleKeygen is a peer's side of uid/keygen/v1: it authorises the
// creation itself, refuses a scope it holds a key for or is making one
// for, runs its part and stores its share; it answers with the public key.
func (s *Service) handleKeygen(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	inv, err := api.DecodeUIDKeygenInvite(body)
	if err != nil {
		return nil, err
	}
	if sh, err := s.share(ctx, inv.Scope); err != nil {
		s.log.Error("uid: reading a share", "err", err)
		return nil, errors.New("uid: this node failed; the cause is in its log")
	} else if sh != nil {
		s.log.Warn("uid: refused a second key generation for a scope", "gateway", from, "scope", inv.Scope)
		return nil, fmt.Errorf("uid: scope %s has a key already", inv.Scope)
	}
	if err := s.authorizeCreate(ctx, inv.Scope, inv.Account, inv.Request, inv.Proofs); err != nil {
		s.log.Warn("uid: refused key generation: not authorised", "gateway", from, "scope", inv.Scope, "err", err)
		return nil, refusal(err)
	}
	release, err := s.lockScope(ctx, inv.Scope)
	switch {
	case errors.Is(err, errBusy):
		return nil, fmt.Errorf("uid: a key generation for scope %s is running", inv.Scope)
	case errors.Is(err, errKeyExists):
		return nil, fmt.Errorf("uid: scope %s has a key already", inv.Scope)
	case err != nil:
		s.log.Error("uid: reading a share", "err", err)
		return nil, errors.New("uid: this node failed; the cause is in its log")
	}
	ctx, cancel := context.WithTimeout(ctx, s.keygenTimeout)
	untrack, err := s.track(from, inv.Nonce, cancel)
	if err != nil {
		cancel()
		release()
		return nil, err
	}
	// The run has ended for an abort only once the scope is free
	// (handleAbort waits for it).
	defer func() {
		cancel()
		release()
		untrack()
	}()
	pub, _, err := s.runKeygen(ctx, inv.Scope, inv.Nonce)
	if errors.Is(err, errKeyExists) {
		return nil, fmt.Errorf("uid: scope %s has a key already", inv.Scope)
	}
	if err != nil {
		s.log.Warn("uid: key generation failed", "gateway", from, "scope", inv.Scope, "err", err)
		var abort *round.AbortError
		if errors.As(err, &abort) && len(abort.Culprits) > 0 {
			return nil, fmt.Errorf("uid: key generation aborted; culprits %v", abort.Culprits)
		}
		return nil, errors.New("uid: key generation failed; the cause is in the node's log")
	}
	return pub, nil
}

// refusal is what a peer tells the gateway when it refuses: auth's code
// and message (no secret in them), else a fixed text.
func refusal(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("uid: refused (%d): %s", ae.Code, ae.Message)
	}
	return errors.New("uid: refused")
}
