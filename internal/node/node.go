// Package node wires one keymesh node together: cluster config → enclave
// backend → identity key (sealed at rest by the enclave) → store → peer
// transport → HTTP API (which opens sealed requests; enclave.go and
// docs/enclave.md), and runs it until its context is cancelled, then shuts
// it down in the reverse order.
//
// It owns the process-level concerns the libraries below it leave out: the
// listeners, the *slog.Logger handed to each component, metrics, and the
// readiness rule (a node is ready when at least threshold nodes of the
// cluster, itself included, are reachable, since that many are needed to
// sign).
//
// Every MPC session runs through RunSession, which first checks its id
// against the node's durable record of the session ids it ran and adds it
// (session.go): a repeat, whatever a gateway sends, is refused before the
// session sends anything.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
	"github.com/keymesh/keymesh/internal/version"
	"github.com/keymesh/keymesh/internal/wallet"
)

// StoreFile is the name of the SQLite database inside a node's data dir.
const StoreFile = "keymesh.db"

// ShutdownTimeout bounds how long Run waits for in-flight HTTP requests
// after its context is cancelled.
const ShutdownTimeout = 10 * time.Second

// Options configure New.
type Options struct {
	Config *config.Node // required, as returned by config.Load
	Logger *slog.Logger // required; the node adds a "node" attribute (its id) to every line

	// APIListener and PeerListener, if set, are used instead of listening
	// on Config.APIListen and Config.PeerListen (tests bind port 0 first).
	// The node closes them.
	APIListener, PeerListener net.Listener
	// MetricsListener, if set, serves GET /metrics instead of a listener
	// on Config.MetricsListen (limits.go).
	MetricsListener net.Listener

	// Transport overrides the transport's timing defaults (zero fields keep
	// them); Self, Identity and Logger are always set by New.
	Transport transport.Options

	// AllowPlaintext makes the API accept unsealed JSON-RPC requests, as
	// Config.AllowPlaintext does: for development clusters and tests.
	// Otherwise only requests sealed to the node's attested keys are served.
	AllowPlaintext bool

	// Demo also runs the demo services of serviceList (services.go): the
	// counter of docs/services.md. For tests; a production node leaves it
	// off, and keymesh's commands have no flag for it.
	Demo bool
}

// Node is one running keymesh node.
type Node struct {
	cfg     *config.Node
	log     *slog.Logger
	enclave enclave.Backend // opened first: every secret at rest is sealed by it
	ident   *config.Identity
	pub     string // ident's public key, kept after ident is destroyed
	// identityPub is the raw Ed25519 identity public key (attested).
	identityPub []byte
	sealedKeys  sealedKeys // envelope keys, made on first use (enclave.go)
	store       store.Store
	tr          *transport.Transport
	metrics     *httpapi.Metrics
	api         *http.Server
	apiLn       net.Listener
	peerLn      net.Listener
	metricsLn   net.Listener // nil: no metrics served (limits.go)
	metricsSrv  *http.Server
	auth        authHook  // the auth service (auth.go), asked by the wallet before signing
	audit       auditHook // the audit log and its signed heads (audit.go)

	replica *replica.Replica // record replication (replica.go)
	wallet  *wallet.Service  // the wallet service (wallet.go)

	closers []func() // services' Close, run in reverse order by closeAll

	runOnce sync.Once

	// sessionRecordOff switches the durable session record off (session.go).
	// Only a keymesh_adversary test build can set it (adversary.go), to show
	// that its tests see the attacks the record stops.
	sessionRecordOff atomic.Bool
}

// New loads the node's identity, opens and migrates its store, starts its
// peer links and binds its listeners; nothing is served until Run. On error
// everything opened is closed again.
//
// The identity key must already exist in the data dir (keymesh cluster init
// creates it): a node that made itself a new one would not be trusted by
// its peers, so New refuses to start instead.
func New(opts Options) (*Node, error) {
	n := &Node{cfg: opts.Config, apiLn: opts.APIListener, peerLn: opts.PeerListener, metricsLn: opts.MetricsListener}
	if err := n.open(opts); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *Node) open(opts Options) (err error) {
	cfg := opts.Config
	if cfg == nil || opts.Logger == nil {
		return errors.New("node: Options.Config and Options.Logger are required")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.log = opts.Logger.With("node", cfg.ID)

	if err := n.openEnclave(); err != nil {
		return err
	}
	ident, err := n.loadIdentity()
	if err != nil {
		return err
	}
	n.ident, n.pub, n.identityPub = ident, ident.PublicKeyString(), ident.PublicKey()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n.store, err = OpenStore(ctx, cfg); err != nil {
		return err
	}
	if err := n.store.Migrate(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.checkStoreIdentity(ctx); err != nil {
		return err
	}

	if n.apiLn == nil {
		if n.apiLn, err = net.Listen("tcp", cfg.APIListen); err != nil {
			return fmt.Errorf("node: API listener: %w", err)
		}
	}
	if n.peerLn == nil {
		if n.peerLn, err = net.Listen("tcp", cfg.PeerListen); err != nil {
			return fmt.Errorf("node: peer listener: %w", err)
		}
	}
	if n.metricsLn == nil && cfg.MetricsListen != "" {
		if n.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("node: metrics listener: %w", err)
		}
	}
	n.apiLn = httpapi.LimitListener(n.apiLn, apiConnLimits(cfg.APILimits))

	topts := opts.Transport
	topts.Self, topts.Identity, topts.Logger = cfg, ident, n.log.With("component", "transport")
	if n.tr, err = transport.New(topts); err != nil {
		return fmt.Errorf("node: %w", err)
	}

	n.metrics = httpapi.NewMetrics(n.peerInfo)
	registerTransportMetrics(n.metrics.Registry(), n.tr)
	svc := newServices(opts.Demo)
	httpapi.RegisterNode(svc.reg, n.NodeInfo)
	sealing, err := n.openEnclaveAPI(ctx, svc, opts.AllowPlaintext || cfg.AllowPlaintext)
	if err != nil {
		return err
	}
	if err := n.openServices(svc); err != nil {
		return err
	}
	h := httpapi.NewHandler(httpapi.Options{
		Registry: svc.reg,
		Logger:   n.log.With("component", "api"),
		Metrics:  n.metrics,
		Ready:    func(context.Context) api.ReadyStatus { return n.Ready() },
		Routes:   append(svc.routes, n.audit.route),
		Sealing:  sealing,

		RateLimits:     apiRateLimits(cfg.APILimits),
		TrustedProxies: cfg.APILimits.Proxies(),
		// The login bundle an app serves from a scope's origin calls the
		// passkey ceremonies directly (httpapi.CORS).
		CORS: &httpapi.CORS{Origins: func(ctx context.Context, scope string) ([]string, error) {
			_, cfg, err := n.Auth().State().Scope(ctx, scope)
			if err != nil {
				return nil, err
			}
			return cfg.Origins, nil
		}},
	})
	n.api = httpapi.NewServer(h, n.log.With("component", "http"))
	return nil
}

// storeIdentityKey is where the store remembers which identity it belongs
// to, so that a data dir paired with another node's key is noticed.
const storeIdentityNS, storeIdentityKey = "node", "identity_key"

func (n *Node) checkStoreIdentity(ctx context.Context) error {
	pub := n.pub
	got, err := n.store.Get(ctx, storeIdentityNS, storeIdentityKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := n.store.Put(ctx, storeIdentityNS, storeIdentityKey, []byte(pub)); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	case err != nil:
		return fmt.Errorf("node: %w", err)
	case string(got) != pub:
		return fmt.Errorf("node: the store in %s belongs to identity %s, not to this node's identity %s", n.cfg.DataDir, got, pub)
	}
	if _, err := n.store.Append(ctx, "node/starts", []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// Run serves the API and the peer transport until ctx is cancelled, then
// shuts down gracefully: the API stops accepting and finishes in-flight
// requests (at most ShutdownTimeout), then the transport and the store are
// closed. It returns nil after a clean shutdown, or the first serving
// error. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	ran := false
	n.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("node: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	n.serveMetrics()
	go func() {
		err := n.api.Serve(n.apiLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		err := n.tr.Serve(ctx, n.peerLn)
		// A stop can close the transport before this goroutine first
		// runs; Serve then reports ErrClosed, which is the clean exit
		// Run asked for, not a serving error.
		if errors.Is(err, transport.ErrClosed) && ctx.Err() != nil {
			err = nil
		}
		errc <- err
	}()
	n.log.Info("node started", "cluster", n.cfg.ClusterID,
		"threshold", n.cfg.Threshold, "n", n.cfg.N(),
		"api", n.apiLn.Addr().String(), "peer", n.peerLn.Addr().String(),
		"identity", n.pub, "version", version.String())

	first, pending := firstExit(ctx, errc, 2)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer scancel()
	if err := n.api.Shutdown(sctx); err != nil {
		n.api.Close()
		n.log.Warn("API shutdown", "err", err)
	}
	if n.metricsSrv != nil {
		n.metricsSrv.Close()
	}
	n.closeAll()
	first = drainExits(errc, pending, first)
	n.log.Info("node stopped")
	if first != nil {
		return fmt.Errorf("node: %w", first)
	}
	return nil
}

// firstExit waits until ctx is done or one of servers servers reports its
// exit on errc, and returns that exit's error and how many servers are
// still to be collected. Both may be ready at once (a server that exits
// cleanly because ctx was cancelled), and select picks either: the count
// says which happened.
func firstExit(ctx context.Context, errc <-chan error, servers int) (error, int) {
	select {
	case <-ctx.Done():
		return nil, servers
	case err := <-errc:
		return err, servers - 1
	}
}

// drainExits collects the exits of pending servers from errc, stopping at
// the first error (errc must have room for every server's exit, so one not
// collected does not block), and returns first or that error.
func drainExits(errc <-chan error, pending int, first error) error {
	for ; pending > 0 && first == nil; pending-- {
		first = <-errc
	}
	return first
}

// closeAll releases what New opened; it is safe on a partly built Node.
func (n *Node) closeAll() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
	if n.tr != nil {
		n.tr.Close()
	}
	if n.apiLn != nil {
		n.apiLn.Close()
	}
	if n.peerLn != nil {
		n.peerLn.Close()
	}
	if n.metricsLn != nil {
		n.metricsLn.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.ident != nil {
		n.ident.Destroy()
	}
	n.closeEnclave()
}

// Close releases a Node that was built by New but never Run.
func (n *Node) Close() { n.closeAll() }

// ID returns the node's id.
func (n *Node) ID() uint16 { return n.cfg.ID }

// APIURL returns the base URL the API listens on.
func (n *Node) APIURL() string { return "http://" + n.apiLn.Addr().String() }

// IdentityKey returns the node's identity public key as in the config.
func (n *Node) IdentityKey() string { return n.pub }

// Store returns the node's store, for the services wired on top of it.
func (n *Node) Store() store.Store { return n.store }

// Transport returns the node's peer transport.
func (n *Node) Transport() *transport.Transport { return n.tr }

// RunSession runs s over the peer transport and counts it in the
// keymesh_mpc_sessions_total metric under protocol.
//
// Before s starts, its ID is checked against and added to the node's
// durable session record, in one store transaction (session.go): an ID this
// node ran before, in this process or an earlier one, or in another process
// sharing its PostgreSQL database, is refused with an error wrapping
// ErrSessionRepeated before s produces any message, and logged as a
// security event. A session that fails after it was recorded keeps its
// entry: its ID cannot be retried (retries take a fresh nonce).
func (n *Node) RunSession(ctx context.Context, protocol string, s *round.Session) (any, error) {
	if err := n.checkSession(ctx, protocol, s); err != nil {
		s.Fail(err)
		n.metrics.SessionDone(protocol, err)
		return nil, err
	}
	res, err := n.tr.RunSession(ctx, s)
	n.metrics.SessionDone(protocol, err)
	return res, err
}

func (n *Node) peerInfo() []api.PeerInfo {
	ps := n.tr.Peers()
	out := make([]api.PeerInfo, len(ps))
	for i, p := range ps {
		out[i] = api.PeerInfo{ID: p.ID, Reachable: p.Reachable, LastSeen: p.LastSeen, LastError: p.LastError, PolicyMismatch: p.PolicyMismatch}
		if cp, ok := n.cfg.Peer(p.ID); ok {
			out[i].APIURL = cp.APIURL
		}
	}
	return out
}

// NodeInfo answers keymesh_nodeInfo.
func (n *Node) NodeInfo(context.Context) (*api.NodeInfo, error) {
	return &api.NodeInfo{
		NodeID:      n.cfg.ID,
		ClusterID:   n.cfg.ClusterID,
		Threshold:   n.cfg.Threshold,
		N:           n.cfg.N(),
		Version:     version.String(),
		IdentityKey: n.pub,
		Peers:       n.peerInfo(),
	}, nil
}

// Ready reports whether at least threshold nodes, this one included, are
// reachable.
func (n *Node) Ready() api.ReadyStatus {
	st := api.ReadyStatus{Threshold: n.cfg.Threshold, Reachable: 1, Down: []uint16{}}
	for _, p := range n.tr.Peers() {
		if p.Reachable {
			st.Reachable++
		} else {
			st.Down = append(st.Down, p.ID)
		}
	}
	st.Ready = st.Reachable >= st.Threshold
	return st
}
