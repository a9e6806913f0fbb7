package wallet

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/transport"
)

// createOp is the operation an account creation is approved as (for
// keymesh_createAccount and eth_requestAccounts alike).
func createOp(scope, account string, req [requestLen]byte) auth.Operation {
	return auth.Operation{Scope: scope, Account: account, Method: api.MethodCreateAccount,
		Hash: api.OperationHash(api.MethodCreateAccount, common.Address{}, [32]byte{}), Request: req}
}

func checkID(name, v string) error {
	if len(v) > api.MaxAccountIDLen || !utf8.ValidString(v) {
		return api.Errorf(api.CodeInvalidParams, "%s: %s must be UTF-8 of at most %d bytes", api.MethodCreateAccount, name, api.MaxAccountIDLen)
	}
	return nil
}

// authorizeCreate asks auth whether proofs approve creating a key for
// (scope, account), both possibly empty (then: whoever the proofs speak
// for), and returns the owner.
func (s *Service) authorizeCreate(ctx context.Context, scope, account string, req [requestLen]byte, proofs string) (auth.Principal, error) {
	if scope == "" {
		scope = proofsScope(proofs, api.MethodCreateAccount, createOp("", "", req).Hash)
	}
	pr, err := s.authorizeOp(ctx, createOp(scope, account, req), proofs)
	if err != nil {
		return pr, err
	}
	if pr.Scope == "" || pr.Account == "" || scope != "" && pr.Scope != scope || account != "" && pr.Account != account {
		return pr, api.Errorf(api.CodeUnauthorized, "%s: the approval speaks for another account", api.MethodCreateAccount)
	}
	return pr, nil
}

// createRPC serves keymesh_createAccount.
func (s *Service) createRPC(ctx context.Context, params json.RawMessage) (any, error) {
	var p api.CreateAccountParams
	if len(params) > 0 && string(params) != "null" && string(params) != "[]" {
		if err := httpapi.DecodeParams(params, &p); err != nil {
			return nil, err
		}
	}
	if err := checkID("scope", p.Scope); err != nil {
		return nil, err
	}
	if err := checkID("account", p.Account); err != nil {
		return nil, err
	}
	var req [requestLen]byte
	fresh(req[:])
	// The claimed scope's quota and share of key generations here, before
	// the approval is recorded (scheduler.peek).
	claimed := p.Scope
	if claimed == "" {
		claimed = proofsScope(httpapi.Proofs(ctx), api.MethodCreateAccount, createOp("", "", req).Hash)
	}
	if err := s.peekSlot(ctx, claimed, workKeygen); err != nil {
		return nil, err
	}
	pr, err := s.authorizeCreate(ctx, p.Scope, p.Account, req, httpapi.Proofs(ctx))
	if err != nil {
		return nil, clientError(err)
	}
	return s.create(ctx, pr, req, httpapi.Proofs(ctx))
}

// requestAccountsRPC serves eth_requestAccounts: the account's addresses,
// creating its first key if it has none. It is approved as
// keymesh_createAccount.
func (s *Service) requestAccountsRPC(ctx context.Context, params json.RawMessage) (any, error) {
	if err := httpapi.NoParams(params); err != nil {
		return nil, err
	}
	var req [requestLen]byte
	fresh(req[:])
	pr, err := s.authorizeCreate(ctx, "", "", req, httpapi.Proofs(ctx))
	if err != nil {
		return nil, clientError(err)
	}
	addrs, err := s.addresses(ctx, pr.Scope, pr.Account)
	if err != nil || len(addrs) > 0 {
		return addrs, err
	}
	res, err := s.create(ctx, pr, req, httpapi.Proofs(ctx))
	if err != nil {
		return nil, err
	}
	return []string{res.Address}, nil
}

// accountsRPC serves eth_accounts. Without proofs it returns no addresses,
// as EIP-1193 providers do before the user connects.
func (s *Service) accountsRPC(ctx context.Context, params json.RawMessage) (any, error) {
	if err := httpapi.NoParams(params); err != nil {
		return nil, err
	}
	proofs := httpapi.Proofs(ctx)
	if proofs == "" {
		return []string{}, nil
	}
	var req [requestLen]byte
	fresh(req[:])
	op := auth.Operation{Method: api.MethodAccounts, Hash: api.OperationHash(api.MethodAccounts, common.Address{}, [32]byte{}), Request: req}
	op.Scope = proofsScope(proofs, op.Method, op.Hash)
	pr, err := s.authorizeOp(ctx, op, proofs)
	if err != nil {
		return nil, clientError(err)
	}
	return s.addresses(ctx, pr.Scope, pr.Account)
}

// create runs a key generation among all n nodes as gateway and returns
// once every node has stored its share. The scope's quotas apply first
// (its wallet keys, and its key generations in flight here, within its
// fair share: schedule.go); a try refused as busy, here or by a peer, is
// tried again with the same request id after a wait, within the request's
// deadline (busyRetry), so the approval is recorded for one request only.
func (s *Service) create(ctx context.Context, owner auth.Principal, req [requestLen]byte, proofs string) (*api.CreateAccountResult, error) {
	q, _ := s.quota(ctx, owner.Scope)
	if err := s.checkKeys(ctx, owner.Scope, q.MaxKeys); err != nil {
		return nil, err
	}
	retry := s.newBusyRetry(ctx, workKeygen)
	for {
		acquire := s.sched.acquire
		if retry.tries > 0 {
			acquire = s.sched.reacquire
		}
		sl, berr := acquire(owner.Scope, workKeygen, q.KeygensInFlight)
		var res *api.CreateAccountResult
		var err error
		if berr != nil {
			s.stats.BusyRefused.Add(1)
			err = berr // over the scope's own quota: not busy, returned at once
		} else {
			res, err = s.createOnce(ctx, owner, req, proofs)
			if isBusy(err) {
				sl.refund() // a peer refused: the key generation did not run
			}
			sl.release()
		}
		if err == nil || !isBusy(err) || ctx.Err() != nil {
			return res, err
		}
		if err := retry.wait(ctx, err); err != nil {
			return nil, err
		}
	}
}

// createOnce is one try of create.
func (s *Service) createOnce(ctx context.Context, owner auth.Principal, req [requestLen]byte, proofs string) (*api.CreateAccountResult, error) {
	up, down := s.reachable()
	if len(down) > 0 {
		return nil, api.Errorf(api.CodeUnavailable, "%s needs all %d nodes; nodes down: %v", api.MethodCreateAccount, s.cfg.N(), down)
	}
	parties := []round.PartyID{s.self()}
	for _, id := range up {
		parties = append(parties, round.PartyID(id))
	}
	slices.Sort(parties)
	inv := keygenInvite{Scope: owner.Scope, Account: owner.Account, Proofs: proofs, Request: req}
	fresh(inv.Nonce[:])
	sess, err := keygen.NewSession(s.self(), parties, s.cfg.Threshold, inv.Nonce[:], rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	body := inv.marshal()
	ctx, cancel := context.WithTimeout(ctx, s.keygenTimeout)
	defer cancel()

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		firstErr  error
		peerAddrs = map[uint16][]byte{}
	)
	for _, id := range up {
		wg.Go(func() {
			out, err := s.tr.Call(ctx, id, kindKeygen, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && ctx.Err() != nil && !isPeerFailure(err) {
				// We cancelled (our own error says why) while the peer's
				// session runs: it can stop now (abort.go).
				s.abortPeers([]uint16{id}, inv.Nonce)
				return
			}
			if err != nil {
				var re *transport.RemoteError
				if errors.As(err, &re) {
					err = &peerRefusal{peer: re.Peer, msg: re.Message}
				}
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			peerAddrs[id] = out
		})
	}
	res, err := s.run(s.gated(ctx, owner.Scope), keygen.ProtocolKeygen, sess)
	var addr common.Address
	var sh *dkls23.Share
	if err == nil {
		sh = res.(*dkls23.Share)
		addr, err = s.save(ctx, req, owner.Scope, owner.Account, sh)
	}
	if err != nil {
		cancel()
	}
	wg.Wait()
	if firstErr != nil {
		err = firstErr
	}
	s.auditOp(ctx, audit.KindKeygen, createOp(owner.Scope, owner.Account, req), proofs, parties, err)
	if err != nil {
		s.log.Warn("key generation failed", "err", err)
		var pr *peerRefusal
		switch {
		case errors.As(err, &pr):
			code, msg := pr.split()
			return nil, api.Errorf(code, "node %d refused the key generation: %s", pr.peer, clip(msg))
		case isPeerFailure(err):
			peer, _ := peerErr(err)
			return nil, api.Errorf(api.CodeUnavailable, "%s needs all %d nodes; node %d failed during key generation", api.MethodCreateAccount, s.cfg.N(), peer)
		}
		if peer, ok := peerErr(err); ok {
			return nil, api.Errorf(api.CodeUnavailable, "%s: node %d did not take part in time", api.MethodCreateAccount, peer)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, api.Errorf(api.CodeUnavailable, "%s: key generation timed out", api.MethodCreateAccount)
		}
		return nil, err
	}
	for id, a := range peerAddrs {
		if common.BytesToAddress(a) != addr || len(a) != common.AddressLength {
			return nil, fmt.Errorf("wallet: node %d stored a key with another address", id)
		}
	}
	s.keySaved(owner.Scope)
	s.log.Info("account created", "address", addr.Hex(), "scope", owner.Scope, "account", owner.Account)
	return &api.CreateAccountResult{
		Address: addr.Hex(), PublicKey: hexutil.Encode(sh.PublicKeyBytes()),
		Scope: owner.Scope, Account: owner.Account, Threshold: sh.Threshold(), N: len(sh.Parties()),
	}, nil
}

// handleKeygen is a peer's side of kindKeygen: it asks auth itself whether
// the account's owner approved the creation, runs its part of the key
// generation among all n nodes and stores its share; it answers with the
// new address.
func (s *Service) handleKeygen(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	var inv keygenInvite
	if err := inv.unmarshal(body); err != nil {
		return nil, err
	}
	// The scope's share of this node's key generations, and its key quota,
	// before anything is authorised: a busy refusal spends nothing of the
	// approval, and the gateway tries again (schedule.go). The scope is
	// the invitation's (the approvals' when it names none); authorizeCreate
	// below refuses an invitation whose approvals speak for another.
	scope := inv.Scope
	if scope == "" {
		scope = proofsScope(inv.Proofs, api.MethodCreateAccount, createOp("", "", inv.Request).Hash)
	}
	q, _ := s.quota(ctx, scope)
	sl, berr := s.sched.acquire(scope, workKeygen, q.KeygensInFlight)
	if berr != nil {
		s.stats.BusyRefused.Add(1)
		return nil, refusal(berr)
	}
	defer sl.release()
	if err := s.checkKeys(ctx, scope, q.MaxKeys); err != nil {
		return nil, refusal(err)
	}
	pr, err := s.authorizeCreate(ctx, inv.Scope, inv.Account, inv.Request, inv.Proofs)
	if err != nil {
		s.log.Warn("refused key generation: not authorised", "gateway", from, "err", err)
		s.auditOp(ctx, audit.KindKeygenPeer, createOp(inv.Scope, inv.Account, inv.Request), inv.Proofs, nil, err)
		return nil, refusal(err)
	}
	if _, err := s.st.Get(ctx, nsRequest, hex.EncodeToString(inv.Request[:])); err == nil {
		s.log.Warn("refused key generation: request already used", "gateway", from)
		return nil, refusal(api.Errorf(api.CodeRejected, "%s: this request already created a key", api.MethodCreateAccount))
	}
	parties := make([]round.PartyID, 0, s.cfg.N())
	for _, id := range s.cfg.IDs() {
		parties = append(parties, round.PartyID(id))
	}
	slices.Sort(parties)
	sess, err := keygen.NewSession(s.self(), parties, s.cfg.Threshold, inv.Nonce[:], rand.Reader)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.keygenTimeout)
	defer cancel()
	untrack, err := s.track(from, inv.Nonce, cancel)
	if err != nil {
		return nil, err
	}
	defer untrack()
	res, err := s.run(s.gated(ctx, pr.Scope), keygen.ProtocolKeygen, sess)
	if err != nil {
		// Names the inviting gateway beside the node's own line for a
		// refused repeat of a session id (node.ErrSessionRepeated).
		s.log.Warn("key generation session failed", "gateway", from, "err", err)
		return nil, fmt.Errorf("wallet: key generation: %w", err)
	}
	addr, err := s.save(ctx, inv.Request, pr.Scope, pr.Account, res.(*dkls23.Share))
	s.auditOp(ctx, audit.KindKeygenPeer, createOp(pr.Scope, pr.Account, inv.Request), inv.Proofs, parties, err)
	if errors.Is(err, errRequestUsed) {
		return nil, refusal(api.Errorf(api.CodeRejected, "%s: this request already created a key", api.MethodCreateAccount))
	}
	if err != nil {
		s.log.Error("store share", "err", err)
		return nil, errors.New("wallet: cannot store the share")
	}
	s.keySaved(pr.Scope)
	return addr.Bytes(), nil
}

// Register adds the wallet's JSON-RPC methods to reg.
func (s *Service) Register(reg *httpapi.Registry) {
	reg.Register(api.MethodCreateAccount, s.createRPC)
	reg.Register(api.MethodRequestAccounts, s.requestAccountsRPC)
	reg.Register(api.MethodAccounts, s.accountsRPC)
	for _, m := range []string{api.MethodPersonalSign, api.MethodSignTypedDataV4, api.MethodSignTransaction, api.MethodSignDigest} {
		reg.Register(m, s.signRPC(m))
	}
}

// proofsScope returns the scope named by the first approval in proofs for
// (method, hash), or "". Methods without params (eth_accounts,
// eth_requestAccounts) learn the scope from it; Authorize then checks the
// approval against that scope's own configuration like any other.
func proofsScope(proofs, method string, hash [32]byte) string {
	ps, err := api.ParseProofs(proofs)
	if err != nil {
		return ""
	}
	for _, p := range ps.Approvals {
		raw, err := base64.RawURLEncoding.DecodeString(p.Approval)
		if err != nil {
			continue
		}
		a, err := record.DecodeApproval(raw)
		if err == nil && a.Method == method && a.Hash == hash {
			return a.Scope
		}
	}
	return ""
}
