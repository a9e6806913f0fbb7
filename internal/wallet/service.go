package wallet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/internal/abort"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Releaser is implemented by an Authorizer that can forget the nonces it
// recorded for an operation (auth.Service.ReleaseNonces): the gateway
// gives a busy request's approval back when no other node can hold it.
type Releaser interface {
	ReleaseNonces(ctx context.Context, op auth.Operation, proofs string) error
}

// Authorizer is what the wallet asks before acting: auth.Service.Authorize.
// It returns who the proofs speak for, or an *api.Error saying why not.
type Authorizer interface {
	Authorize(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error)
}

// Sealer seals share records at rest: enclave.Backend's Seal and Unseal.
type Sealer interface {
	Seal(plaintext []byte, label string) ([]byte, error)
	Unseal(sealed []byte, label string) ([]byte, error)
}

// Transport is the part of *transport.Transport the wallet uses.
type Transport interface {
	Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error)
	Handle(kind string, h transport.Handler)
	Peers() []transport.PeerStatus
}

// Options configure New.
type Options struct {
	Config    *config.Node // this node and the cluster (id, threshold, peers)
	Transport Transport
	// RunSession runs an MPC session with the peers (node.RunSession, which
	// counts it in the metrics under protocol).
	RunSession func(ctx context.Context, protocol string, s *round.Session) (any, error)
	Store      store.Store
	// Sealer seals share records. Nil stores them unsealed: only for a node
	// without an enclave backend (the node says so in its log).
	Sealer Sealer
	Auth   Authorizer // required
	Logger *slog.Logger

	// CatchUp, if set, brings this node's auth records up to date from its
	// peers (replica.CatchUp). The wallet calls it once when auth does not
	// know the scope or account of an operation: a record written with a
	// quorum of n−t+1 nodes may not have reached this node yet, while key
	// generation needs all n.
	CatchUp func(ctx context.Context) error

	// RawDigest reports whether scope allows keymesh_signDigest (signing
	// a raw digest, which may be a transaction's or another app's message).
	// Nil allows it for no scope.
	RawDigest func(ctx context.Context, scope string) bool

	// Audit, if set, records every signing attempt and key generation
	// (gateway and peer side) and every refused invitation (audit.go).
	Audit Auditor

	// ChainIDs, if not empty, are the only chain ids eth_signTransaction
	// signs for.
	ChainIDs []uint64
	// SignTimeout bounds one signing attempt (default 10 s); KeygenTimeout
	// one key generation (default 60 s).
	SignTimeout, KeygenTimeout time.Duration

	// Limits bound the MPC sessions this node runs at once, shared fairly
	// among scopes (schedule.go).
	Limits Limits
	// BusyWait bounds how long a gateway keeps retrying a request refused
	// as busy when the request's context has no earlier deadline: signing
	// (default 5 s) and key generation (default 20 s).
	BusyWaitSign, BusyWaitKeygen time.Duration
	// Quota returns a scope's quotas (auth.Service.Quota). Nil applies the
	// defaults (auth.ResolveQuota) to every scope.
	Quota func(ctx context.Context, scope string) (auth.Quota, bool)
}

// Service is one node's wallet service. Its methods are safe for
// concurrent use.
type Service struct {
	cfg    *config.Node
	tr     Transport
	run    func(ctx context.Context, protocol string, s *round.Session) (any, error)
	st     store.Store
	sealer Sealer
	auth   Authorizer
	log    *slog.Logger
	chains []uint64
	raw    func(ctx context.Context, scope string) bool
	catch  func(ctx context.Context) error
	audit  Auditor

	signTimeout, keygenTimeout time.Duration

	sched *scheduler
	rates *signRates // the scope's signatures as gateway
	// cosignRates bounds the scope's signatures as co-signer
	// (takeCosignRate).
	cosignRates *signRates
	quota       func(ctx context.Context, scope string) (auth.Quota, bool)
	// claimedScope reads the scope a signing request's approvals name,
	// before they are verified (proofsScope; the wallet's own tests, whose
	// stand-in approvals have another format, replace it).
	claimedScope func(proofs, method string, hash [32]byte) string
	busyWait     [numWork]time.Duration
	keys         keyCounts
	runs         abort.Table // sessions run on peers' invitations (abort.go)

	mu    sync.Mutex
	cache map[common.Address]*wallet // decoded share records by address

	rr atomic.Uint32 // rotates the choice of co-signers
	// Stats, for benchmarks and metrics.
	stats Stats
}

// Stats are running totals of where signing time goes.
type Stats struct {
	Signs       atomic.Uint64 // signatures produced as gateway
	Retries     atomic.Uint64 // attempts retried with another signer set
	AuthNanos   atomic.Uint64 // in Authorize, on this node
	PrepNanos   atomic.Uint64 // parsing params, hashing, loading the share
	DKLs23Nanos atomic.Uint64 // in RunSession of signing sessions (compute + waiting on peers)
	// Reservations counts auth.KindReserve calls sent as gateway (none when
	// n ≤ 2t−1), ReserveNanos the wall time spent on them (reserve.go).
	Reservations atomic.Uint64
	ReserveNanos atomic.Uint64
	// BusyRefused counts sessions this node's scheduler refused (as
	// gateway or co-signer), BusyRetries the gateway's waits before trying
	// a busy request again, RateLimited the requests refused for their
	// scope's signature rate.
	BusyRefused atomic.Uint64
	BusyRetries atomic.Uint64
	RateLimited atomic.Uint64
	// Released counts busy requests whose approval the gateway gave back
	// (signAs).
	Released atomic.Uint64
	// Aborted counts sessions run on a peer's invitation that the peer
	// abandoned (kindAbort) before they ended.
	Aborted atomic.Uint64
}

// New builds the service and registers its peer handlers on the transport.
// Register the JSON-RPC methods with Register.
func New(opts Options) (*Service, error) {
	if opts.Config == nil || opts.Transport == nil || opts.RunSession == nil || opts.Store == nil || opts.Auth == nil {
		return nil, errors.New("wallet: Config, Transport, RunSession, Store and Auth are required")
	}
	s := &Service{
		cfg: opts.Config, tr: opts.Transport, run: opts.RunSession, st: opts.Store,
		sealer: opts.Sealer, auth: opts.Auth, log: opts.Logger, chains: slices.Clone(opts.ChainIDs), raw: opts.RawDigest,
		catch: opts.CatchUp, audit: opts.Audit,
		signTimeout: opts.SignTimeout, keygenTimeout: opts.KeygenTimeout,
		cache: map[common.Address]*wallet{},
		sched: newScheduler(opts.Limits), rates: newSignRates(), cosignRates: newSignRates(), quota: opts.Quota, claimedScope: proofsScope,
		busyWait: [numWork]time.Duration{workSign: opts.BusyWaitSign, workKeygen: opts.BusyWaitKeygen},
	}
	if s.busyWait[workSign] <= 0 {
		s.busyWait[workSign] = 5 * time.Second
	}
	if s.busyWait[workKeygen] <= 0 {
		s.busyWait[workKeygen] = 20 * time.Second
	}
	if s.quota == nil {
		s.quota = func(context.Context, string) (auth.Quota, bool) { return auth.ResolveQuota(record.ScopeQuota{}), false }
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.signTimeout <= 0 {
		s.signTimeout = 10 * time.Second
	}
	if s.keygenTimeout <= 0 {
		s.keygenTimeout = 60 * time.Second
	}
	s.tr.Handle(kindKeygen, s.handleKeygen)
	s.tr.Handle(kindSign, s.handleSign)
	s.tr.Handle(kindAbort, s.handleAbort)
	return s, nil
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

func (s *Service) self() round.PartyID { return round.PartyID(s.cfg.ID) }

// fresh returns n random bytes; session nonces and request ids come from here.
func fresh(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("wallet: crypto/rand: %v", err)) // never fails on supported platforms
	}
}

// reachable returns the ids of the peers whose links are up, and of those down.
func (s *Service) reachable() (up, down []uint16) {
	for _, p := range s.tr.Peers() {
		if p.Reachable {
			up = append(up, p.ID)
		} else {
			down = append(down, p.ID)
		}
	}
	return up, down
}

// peerErr extracts the peer a failed session or call blames for being down or
// slow, if any.
func peerErr(err error) (uint16, bool) {
	var pd *transport.PeerDownError
	if errors.As(err, &pd) {
		return pd.Peer, true
	}
	var te *transport.TimeoutError
	if errors.As(err, &te) && len(te.Waiting) > 0 {
		return uint16(te.Waiting[0]), true
	}
	return 0, false
}

// authorizeOp authorises every wallet operation, as gateway and as
// co-signer: auth.AuthorizeSealed (a request sealed for another scope is
// refused; auth is asked once more after catching up with the peers when
// it does not know the operation's scope or account yet, see
// Options.CatchUp).
func (s *Service) authorizeOp(ctx context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	var catchUp func(context.Context) error
	if s.catch != nil {
		catchUp = func(ctx context.Context) error {
			err := s.catch(ctx)
			if err != nil {
				s.log.Debug("catch-up before retrying authorization", "err", err)
			}
			return err
		}
	}
	return auth.AuthorizeSealed(ctx, s.auth, catchUp, op, proofs)
}
