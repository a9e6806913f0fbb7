package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/web"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
)

// authHook holds the node's auth service (nil until openAuth).
type authHook struct{ svc *auth.Service }

// Auth returns the node's auth service: Authorize for the services that
// act on accounts (the wallet), the state for tests.
func (n *Node) Auth() *auth.Service { return n.auth.svc }

// nonceSweepInterval is how often expired approval nonces are forgotten.
const nonceSweepInterval = 10 * time.Minute

// openAuth builds the auth service and puts it on the seam (authService).
// Its records are stored through the replica (a write succeeds once n−t+1
// nodes stored it).
func (n *Node) openAuth() (Service, error) {
	origins := n.authOrigins()     // the same on every node of the cluster
	admission := n.authAdmission() // likewise
	s, err := auth.New(auth.Options{Store: n.store, Submit: n.replica.Submit, Origins: origins, Admission: admission})
	if err != nil {
		return nil, err
	}
	n.auth.svc = s
	return &authService{s: s, origins: origins, admission: admission, catchUp: n.replica.CatchUp, log: n.log.With("component", "auth")}, nil
}

// authService is auth on the node's seam: its JSON-RPC methods (scopes,
// passkey registration and authentication, delegated registration, record
// submission; Passport's names as aliases), the /login page, its record
// kinds (record.AuthKinds, applied by auth.Applier), the peer handler of
// nonce reservations (auth.KindReserve), and the periodic sweep of expired
// approval nonces.
type authService struct {
	s       *auth.Service
	origins auth.OriginPolicy // the Applier's (auth.Applier.Origins)
	// admission is the Applier's auth.Applier.Admission.
	admission auth.AdmissionPolicy
	catchUp   func(context.Context) error
	log       *slog.Logger
	stop      func()
}

func (a *authService) Name() string { return "auth" }

func (a *authService) RecordKinds() map[record.Kind]replica.Applier {
	m := map[record.Kind]replica.Applier{}
	for _, k := range record.AuthKinds() {
		m[k] = auth.Applier{Origins: a.origins, Admission: a.admission}
	}
	return m
}

func (a *authService) Methods() []httpapi.Method { return auth.Methods(a.s) }

func (a *authService) PeerRPCs() map[string]transport.Handler {
	// Gateways reserve approval nonces here.
	return map[string]transport.Handler{auth.KindReserve: a.s.ReserveHandler(a.catchUp)}
}

func (a *authService) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Pattern: "GET /login", Handler: web.Handler()},
		{Pattern: "GET /login/", Handler: web.Handler()},
	}
}

// Start starts the sweep of expired approval nonces.
func (a *authService) Start(context.Context) error {
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
				if err := a.s.SweepNonces(ctx); err != nil && ctx.Err() == nil {
					a.log.Warn("auth: sweeping approval nonces", "err", err)
				}
			}
		}
	}()
	a.stop = func() { cancel(); <-done }
	return nil
}

func (a *authService) Stop() {
	if a.stop != nil {
		a.stop()
	}
}
