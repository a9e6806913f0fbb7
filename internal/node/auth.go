package node

import (
	"context"
	"time"

	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/web"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// authHook holds the node's auth service (nil until openAuth).
type authHook struct{ svc *auth.Service }

// Auth returns the node's auth service: Authorize for the services that
// act on accounts (the wallet), the state for tests.
func (n *Node) Auth() *auth.Service { return n.auth.svc }

// nonceSweepInterval is how often expired approval nonces are forgotten.
const nonceSweepInterval = 10 * time.Minute

// openAuth wires the auth service into the node: its JSON-RPC methods
// (scopes, passkey registration and authentication, delegated
// registration, record submission; Passport's names as aliases), the
// /login page, the peer handler of nonce reservations (auth.KindReserve),
// and the periodic sweep of expired approval nonces.
//
// Records are stored through the replica when the node has one (a write
// succeeds once n−t+1 nodes stored it); without one they are applied to
// this node's store only.
func (n *Node) openAuth(svc *services) error {
	opts := auth.Options{Store: n.store, Origins: n.authOrigins()} // the same on every node of the cluster
	n.wireAuthReplica(&opts)
	s, err := auth.New(opts)
	if err != nil {
		return err
	}
	n.auth.svc = s
	auth.Register(svc.reg, s)
	n.tr.Handle(auth.KindReserve, s.ReserveHandler(n.authCatchUp())) // gateways reserve approval nonces here
	svc.route(httpapi.Route{Pattern: "GET /login", Handler: web.Handler()})
	svc.route(httpapi.Route{Pattern: "GET /login/", Handler: web.Handler()})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(nonceSweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.SweepNonces(ctx); err != nil && ctx.Err() == nil {
					n.log.Warn("auth: sweeping approval nonces", "err", err)
				}
			}
		}
	}()
	n.closers = append(n.closers, func() { cancel(); <-done })
	return nil
}

// authCatchUp is the replica's CatchUp, or nil without a replica.
func (n *Node) authCatchUp() func(context.Context) error {
	if n.replica == nil {
		return nil
	}
	return n.replica.CatchUp
}

// wireAuthReplica makes auth store its records through the replica
// (openReplica runs first and makes auth.Applier its Applier).
func (n *Node) wireAuthReplica(opts *auth.Options) {
	if n.replica != nil {
		opts.Submit = n.replica.Submit
	}
}
