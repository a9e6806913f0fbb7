package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
	"github.com/keymesh/keymesh/internal/wallet"
)

// openWallet builds the wallet service and puts it on the seam
// (walletService): its JSON-RPC methods (keymesh_createAccount,
// eth_requestAccounts, eth_accounts, personal_sign, eth_signTypedData_v4,
// eth_signTransaction, keymesh_signDigest, for the scopes whose config
// allows raw digests) and its peer handlers. Shares are sealed by the
// node's enclave backend; every operation is authorised by the node's own
// auth service (openAuth runs first).
func (n *Node) openWallet() (Service, error) {
	peer := newPeerRecorder(n.tr) // wallet.New registers its peer handlers: kept for the seam
	opts := wallet.Options{
		Config:     n.cfg,
		Transport:  peer,
		RunSession: n.RunSession,
		Store:      n.store,
		Logger:     n.log.With("component", "wallet"),
		Audit:      n.auditEntry,
	}
	// The config's services section: the chains eth_signTransaction signs
	// for and the attempt timeouts (the defaults when it is absent).
	section := n.cfg.Services
	opts.ChainIDs = section.Chains()
	opts.SignTimeout, opts.KeygenTimeout = section.SignTimeoutOr(), section.KeygenTimeoutOr()
	if n.enclave != nil {
		opts.Sealer = n.enclave
	} else {
		n.log.Warn("wallet: no enclave backend; key shares are stored unsealed")
	}
	if a := n.Auth(); a != nil {
		opts.Auth = a
		// keymesh_signDigest only for scopes whose config allows it.
		opts.RawDigest = a.AllowsRawDigest
		// The scope's quotas, with the defaults for a config without any.
		opts.Quota = a.Quota
	}
	if n.replica != nil {
		opts.CatchUp = n.replica.CatchUp
	}
	w, err := wallet.New(opts)
	if err != nil {
		return nil, err
	}
	n.wallet = w
	methods := httpapi.NewRegistry()
	w.Register(methods)
	registerWalletMetrics(n.metrics.Registry(), w)
	return &walletService{methods: methods.List(), peer: peer.handlers}, nil
}

// walletService is the wallet on the node's seam. It owns no record kinds
// (key shares are each node's own, created by key generation sessions);
// it has no background work.
type walletService struct {
	methods []httpapi.Method
	peer    map[string]transport.Handler
}

func (*walletService) Name() string                                 { return "wallet" }
func (*walletService) RecordKinds() map[record.Kind]replica.Applier { return nil }
func (w *walletService) Methods() []httpapi.Method                  { return w.methods }
func (w *walletService) PeerRPCs() map[string]transport.Handler     { return w.peer }
func (*walletService) Start(context.Context) error                  { return nil }
func (*walletService) Stop()                                        {}

// registerWalletMetrics exposes the wallet's running totals (wallet.Stats)
// as Prometheus counters, read at scrape time: signatures made as gateway,
// attempts retried with another signer set, and where the signing time went.
func registerWalletMetrics(reg prometheus.Registerer, w *wallet.Service) {
	st := w.Stats()
	for _, c := range []struct {
		name, help string
		get        func() float64
	}{
		{"keymesh_wallet_signatures_total", "Signatures made with this node as gateway.", func() float64 { return float64(st.Signs.Load()) }},
		{"keymesh_wallet_sign_retries_total", "Signing attempts retried with another signer set (a signer down or stalled).", func() float64 { return float64(st.Retries.Load()) }},
		{"keymesh_wallet_auth_seconds_total", "Time in auth's Authorize for wallet operations (gateway and co-signer).", func() float64 { return float64(st.AuthNanos.Load()) / 1e9 }},
		{"keymesh_wallet_session_seconds_total", "Wall time of signing sessions run as gateway (DKLs23 compute and peer round trips).", func() float64 { return float64(st.DKLs23Nanos.Load()) / 1e9 }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, c.get))
	}
}
