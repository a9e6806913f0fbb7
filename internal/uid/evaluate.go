package uid

import (
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
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/transport"
)

// evalOp is the operation an evaluation is approved as (package doc).
func evalOp(scope, account string, blinded []byte, req [16]byte) auth.Operation {
	return auth.Operation{Scope: scope, Account: account, Method: api.MethodUIDEvaluate,
		Hash: api.UIDOperationHash(api.MethodUIDEvaluate, scope, blinded), Request: req}
}

// PublicKey serves keymesh_uidPublicKey: this node's copy of the scope's
// public key.
func (s *Service) PublicKey(ctx context.Context, p api.UIDPublicKeyParams) (*api.UIDKey, error) {
	const m = api.MethodUIDPublicKey
	if api.CheckUIDID("scope", p.Scope) != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: scope must be 1 to %d bytes of UTF-8", m, api.MaxAccountIDLen)
	}
	sh, err := s.share(ctx, p.Scope)
	if err != nil {
		return nil, s.internalError(m, err)
	}
	if sh == nil {
		return nil, api.Errorf(api.CodeNotFound, "%s: scope %s has no UID key on this node", m, p.Scope)
	}
	return s.keyResult(p.Scope, sh), nil
}

// evaluate is what every node does for one request, gateway or peer: it
// authorises the approval itself, takes a token of the scope's evaluation
// budget and evaluates its share on the blinded element. Its errors are
// *api.Error for refusals (for the client) and others for failures (for
// the log).
func (s *Service) evaluate(ctx context.Context, scope, account, proofs string, blinded []byte, req [16]byte) (*oprf.Partial, error) {
	r, err := oprf.ParseRequest(blinded)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: blinded is not a valid blinded element", api.MethodUIDEvaluate)
	}
	sh, err := s.share(ctx, scope)
	if err != nil {
		return nil, err
	}
	if sh == nil {
		return nil, api.Errorf(api.CodeNotFound, "%s: scope %s has no UID key on this node", api.MethodUIDEvaluate, scope)
	}
	// The scope's budget is checked before the approval is verified (and
	// its nonce spent: the client may send it again when told to wait),
	// and taken after, so that unauthenticated requests cannot drain it.
	if wait, ok := s.rates.peek(scope); !ok {
		return nil, api.RateLimited("scope-uid", wait)
	}
	if _, err := s.authorize(ctx, evalOp(scope, account, blinded, req), proofs); err != nil {
		return nil, err
	}
	if wait, ok := s.rates.take(scope); !ok {
		return nil, api.RateLimited("scope-uid", wait)
	}
	return oprf.Evaluate(sh, r)
}

// Evaluate serves keymesh_uidEvaluate as gateway: its own partial, then
// every reachable peer's (uid/evaluate/v1), each peer authorising the
// approval itself. It returns every partial it got, unverified (the
// client verifies each proof), and an error when fewer than t came.
func (s *Service) Evaluate(ctx context.Context, p api.UIDEvaluateParams) (*api.UIDEvaluation, error) {
	const m = api.MethodUIDEvaluate
	if api.CheckUIDID("scope", p.Scope) != nil || api.CheckUIDID("account", p.Account) != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: scope and account must be 1 to %d bytes of UTF-8", m, api.MaxAccountIDLen)
	}
	blinded, err := base64.RawURLEncoding.DecodeString(p.Blinded)
	if err != nil || len(blinded) != api.UIDBlindedLen {
		return nil, api.Errorf(api.CodeInvalidParams, "%s: blinded must be base64url of %d bytes", m, api.UIDBlindedLen)
	}
	inv := api.UIDEvaluateInvite{Scope: p.Scope, Account: p.Account, Proofs: httpapi.Proofs(ctx)}
	copy(inv.Blinded[:], blinded)
	rand.Read(inv.Request[:])
	own, err := s.evaluate(ctx, p.Scope, p.Account, inv.Proofs, blinded, inv.Request)
	if err != nil {
		return nil, s.clientError(m, err)
	}
	ownB, _ := own.MarshalBinary()
	out := &api.UIDEvaluation{Scope: p.Scope, Partials: []api.UIDPartial{{Node: s.self, Partial: base64.RawURLEncoding.EncodeToString(ownB)}}}

	body := inv.Marshal()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, peer := range s.tr.Peers() {
		if !peer.Reachable {
			out.Partials = append(out.Partials, api.UIDPartial{Node: peer.ID, Error: "unreachable"})
			continue
		}
		wg.Go(func() {
			pp := s.askPeer(ctx, peer.ID, p.Scope, body)
			mu.Lock()
			out.Partials = append(out.Partials, pp)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(out.Partials[1:], func(a, b api.UIDPartial) int { return int(a.Node) - int(b.Node) })
	got := 0
	for _, pp := range out.Partials {
		if pp.Error == "" {
			got++
		}
	}
	if got < s.t {
		return nil, api.Errorf(api.CodeUnavailable, "%s: %d partial evaluations, %d needed; retry when more nodes are up", m, got, s.t)
	}
	return out, nil
}

// askPeer asks peer for its partial. The answer must parse as a partial
// of that peer (its id); its proof is the client's to check.
func (s *Service) askPeer(ctx context.Context, peer uint16, scope string, body []byte) api.UIDPartial {
	ctx, cancel := context.WithTimeout(ctx, s.peerTimeout)
	defer cancel()
	out := api.UIDPartial{Node: peer}
	b, err := s.tr.Call(ctx, peer, api.PeerUIDEvaluate, body)
	if err != nil {
		var re *transport.RemoteError
		if errors.As(err, &re) {
			out.Error = "refused"
		} else {
			out.Error = "no answer"
		}
		s.log.Warn("uid: no partial evaluation from a peer", "peer", peer, "scope", scope, "err", err)
		return out
	}
	pt, err := oprf.ParsePartial(b)
	if err != nil || pt.ID() != peer {
		s.log.Warn("uid: a peer answered a malformed partial evaluation", "peer", peer, "scope", scope, "err", err)
		out.Error = "malformed answer"
		return out
	}
	out.Partial = base64.RawURLEncoding.EncodeToString(b)
	return out
}

// handleEvaluate is a peer's side of uid/evaluate/v1: the same checks as
// the gateway's own (evaluate), on the client's request as forwarded.
func (s *Service) handleEvaluate(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	inv, err := api.DecodeUIDEvaluateInvite(body)
	if err != nil {
		return nil, err
	}
	pt, err := s.evaluate(ctx, inv.Scope, inv.Account, inv.Proofs, inv.Blinded[:], inv.Request)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			s.log.Warn("uid: refused a partial evaluation", "gateway", from, "scope", inv.Scope, "err", err)
			return nil, refusal(err)
		}
		s.log.Error("uid: partial evaluation failed", "gateway", from, "err", err)
		return nil, fmt.Errorf("uid: this node failed; the cause is in its log")
	}
	return pt.MarshalBinary()
}
