// Package uid is the identity service on the node's seam (docs/services.md):
// a threshold OPRF (package oprf, RFC 9497 base mode, ristretto255-SHA512)
// with one key per scope, made by a dealerless DKG among all n nodes
// (package oprf/dkg) and held t-of-n, so that a client turns personal data
// into a stable pseudonym (a UID) while no node sees the data or its hash,
// and fewer than t nodes cannot compute anyone's UID (DESIGN.md, idea 4 and
// "Notes for the data-side services": an OPRF key per purpose).
//
// # Methods and peer RPCs (api/uid.go)
//
//   - keymesh_uidCreateKey (gateway) and uid/keygen/v1 (every peer): a key
//     generation for one scope among all n nodes. Each node stores its
//     share sealed by its enclave (store namespace uid/share, seal label
//     "uid/share/<scope>") and answers with the public key it computed; the
//     gateway checks that all agree. A node refuses a key generation for a
//     scope it holds a key for (before running, and again atomically when it
//     stores), runs at most one for a scope at a time, and never runs a
//     session id twice: the gateway's nonce is only its share of the id,
//     every node mixes in fresh randomness of its own (round.Fresh, in
//     dkg.NewKeygen), and node.RunSession records every session id durably
//     and refuses a repeat (DESIGN.md, "Rules learned"). A gateway that
//     gives a run up tells the nodes it invited (uid/abort/v1).
//   - keymesh_uidPublicKey: this node's copy of the scope's public key (a
//     client compares copies across nodes, or pins one).
//   - keymesh_uidEvaluate (gateway) and uid/evaluate/v1 (every peer): the
//     client sends a blinded element B (oprf.Blind) and an approval; the
//     gateway evaluates its own partial k_i·B with a DLEQ proof and asks
//     every reachable peer for theirs; the client verifies every proof and
//     combines t partials (oprf.BlindState.Finalize). Nodes see only B.
//
// # Authorization: every node decides itself
//
// A gateway never vouches: every node that runs a key generation or
// evaluates a partial calls auth.AuthorizeSealed itself with the client's
// proofs, which the gateway forwards unchanged, against its own replicated
// copy of the scope and account.
//
//   - Key creation is approved as auth.Operation{Scope, Account, Method:
//     api.MethodUIDCreateKey, Hash: api.UIDOperationHash(method, scope, nil)},
//     an operation of an account of the scope in that account's mode; and
//     one of the approvals bound to it must be signed by a developer key.
//     auth.Authorize verifies every approval bound to the operation
//     (developer keys against the scope's config), so a developer proof
//     that passed it is the scope's developer's. The key belongs to the
//     scope, not to an account: its creation is the developer's decision
//     (in a user-mode scope the account's user co-approves as well, since
//     auth asks for the user's approval there; a developer-owned account
//     in developer mode needs the developer's alone).
//   - Evaluation is approved as auth.Operation{Scope, Account, Method:
//     api.MethodUIDEvaluate, Hash: api.UIDOperationHash(method, scope, B)}:
//     an account of the scope, in its mode, approves evaluating exactly
//     this blinded element. The gateway's request id goes with the
//     invitation, so the approval's nonce counts once per request on each
//     node (auth's replay rule); a gateway that changes B, the scope or
//     the request, or sends no approval, gets no partial from an honest
//     node.
//
// Each evaluation is one oracle query of the one-more gap threshold DH
// assumption (TOPPSS, §3), so each node also limits the evaluations it
// makes per scope (a token bucket per scope, Options.Rate and Burst),
// taken after the approval passed so that unauthenticated requests cannot
// drain a scope's budget.
//
// # Errors
//
// As step-ca's: the client gets a fixed message and a code; the cause goes
// to the node's log. An auth refusal keeps auth's code and message (they
// are written for clients and carry no secret); a peer's refusal text is
// the peer's (untrusted) and is only named.
//
// # Known limits
//
// A gateway that gives a key generation up tells the nodes it invited
// (uid/abort/v1, abort.go); a node that does not hear it waits for the
// missing messages until Options.KeygenTimeout and refuses another run
// for the scope meanwhile.
//
// A key generation that fails after some nodes stored their share (a node
// crashing between its last round and its store) leaves the scope with
// shares on some nodes only; a later keymesh_uidCreateKey is refused by
// those nodes. Repairing it needs a reshare, which does not exist yet.
package uid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/abort"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Store namespace (api/services.go: "<service>/<name>").
const nsShare = "uid/share" // scope → sealed oprf.KeyShare encoding

// sealLabel is the enclave seal label of a scope's share.
func sealLabel(scope string) string { return "uid/share/" + scope }

// Sealer seals shares at rest: enclave.Backend's Seal and Unseal.
type Sealer interface {
	Seal(plaintext []byte, label string) ([]byte, error)
	Unseal(sealed []byte, label string) ([]byte, error)
}

// Transport is the part of *transport.Transport the service uses.
type Transport interface {
	Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error)
	Peers() []transport.PeerStatus
}

// Options configure New.
type Options struct {
	Self      uint16   // this node's id
	Threshold int      // t
	Nodes     []uint16 // every node's id, self included
	Transport Transport
	// RunSession runs an MPC session with the peers (node.RunSession:
	// it records the session id and refuses a repeat).
	RunSession func(ctx context.Context, protocol string, s *round.Session) (any, error)
	Store      store.Store
	// Sealer seals shares. Nil stores them unsealed: only for a node
	// without an enclave backend (the node says so in its log).
	Sealer Sealer
	Auth   auth.Authorizer // required
	// CatchUp, if set, brings auth's records up to date from the peers
	// (replica.CatchUp), once, when auth does not know a scope or account.
	CatchUp func(ctx context.Context) error
	Logger  *slog.Logger

	// Rate and Burst bound the evaluations this node makes per scope
	// (default 20 a second, bursts of 40).
	Rate  float64
	Burst int
	// KeygenTimeout bounds a key generation (default 20 s: the OPRF DKG
	// is five rounds of small messages; a run a peer refused holds the
	// scope on the nodes that joined it until then), PeerTimeout one
	// peer's partial evaluation (default 5 s).
	KeygenTimeout, PeerTimeout time.Duration
}

// Service is one node's UID service. It implements node.Service; its
// methods are safe for concurrent use.
type Service struct {
	self    uint16
	t       int
	nodes   []uint16
	tr      Transport
	run     func(ctx context.Context, protocol string, s *round.Session) (any, error)
	st      store.Store
	sealer  Sealer
	auth    auth.Authorizer
	catchUp func(ctx context.Context) error
	log     *slog.Logger
	rates   *rates

	keygenTimeout, peerTimeout time.Duration

	mu       sync.Mutex
	shares   map[string]*oprf.KeyShare // unsealed shares by scope
	inFlight map[string]bool           // scopes with a key generation running here
	runs     abort.Table               // key generations run on peers' invitations (abort.go)
	stopped  bool                      // Stop ran: no share is handed out
}

// New returns the UID service.
func New(o Options) (*Service, error) {
	if o.Transport == nil || o.RunSession == nil || o.Store == nil || o.Auth == nil {
		return nil, errors.New("uid: Transport, RunSession, Store and Auth are required")
	}
	nodes := slices.Clone(o.Nodes)
	slices.Sort(nodes)
	if !slices.Contains(nodes, o.Self) || o.Threshold < 1 || o.Threshold > len(nodes) || len(nodes) > oprf.MaxNodes {
		return nil, fmt.Errorf("uid: node %d, threshold %d of %v: not a valid cluster", o.Self, o.Threshold, nodes)
	}
	s := &Service{
		self: o.Self, t: o.Threshold, nodes: nodes, tr: o.Transport, run: o.RunSession, st: o.Store,
		sealer: o.Sealer, auth: o.Auth, catchUp: o.CatchUp, log: o.Logger,
		rates:         newRates(o.Rate, o.Burst),
		keygenTimeout: o.KeygenTimeout, peerTimeout: o.PeerTimeout,
		shares: map[string]*oprf.KeyShare{}, inFlight: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.keygenTimeout <= 0 {
		s.keygenTimeout = 20 * time.Second
	}
	if s.peerTimeout <= 0 {
		s.peerTimeout = 5 * time.Second
	}
	return s, nil
}

// Name is "uid".
func (*Service) Name() string { return "uid" }

// RecordKinds: none. Shares are each node's own, made by key generation
// sessions, like the wallet's.
func (*Service) RecordKinds() map[record.Kind]replica.Applier { return nil }

// Methods: keymesh_uidCreateKey, keymesh_uidPublicKey, keymesh_uidEvaluate.
func (s *Service) Methods() []httpapi.Method {
	return []httpapi.Method{
		{Name: api.MethodUIDCreateKey, Handler: httpapi.Handle(s.CreateKey)},
		{Name: api.MethodUIDPublicKey, Handler: httpapi.Handle(s.PublicKey)},
		{Name: api.MethodUIDEvaluate, Handler: httpapi.Handle(s.Evaluate)},
	}
}

// PeerRPCs: uid/keygen/v1, uid/abort/v1 and uid/evaluate/v1.
func (s *Service) PeerRPCs() map[string]transport.Handler {
	return map[string]transport.Handler{
		api.PeerUIDKeygen:   s.handleKeygen,
		api.PeerUIDAbort:    s.handleAbort,
		api.PeerUIDEvaluate: s.handleEvaluate,
	}
}

// Start does nothing: the service has no background work.
func (*Service) Start(context.Context) error { return nil }

// Stop wipes the cached shares; from then on the service hands out no
// share (its requests fail), until the node restarts.
func (s *Service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for k, sh := range s.shares {
		sh.Zero()
		delete(s.shares, k)
	}
}

// authorize is auth.AuthorizeSealed with this node's catch-up, for every
// UID operation, as gateway and as peer.
func (s *Service) authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	return auth.AuthorizeSealed(ctx, s.auth, s.catchUp, op, proofs)
}

// internalError is the fixed answer to a client when this node failed;
// the cause is logged (step-ca's pattern).
func (s *Service) internalError(method string, err error) error {
	s.log.Error("uid: internal error", "method", method, "err", err)
	return api.Errorf(api.CodeInternalError, "%s: the node failed; the cause is in its log", method)
}

// clientError returns an auth refusal as it is (its code and text are for
// the client) and any other error as internalError.
func (s *Service) clientError(method string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return s.internalError(method, err)
}
