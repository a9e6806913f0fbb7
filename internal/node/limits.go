package node

import (
	"errors"
	"net"
	"net/http"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// The API port's limits against clients that are not the node's users
// (issue 16; docs/operations.md): rate limits per client address and per
// scope, connection caps, and the metrics on a listener of their own.

// apiRateLimits are the config's rate limits over httpapi's defaults: a
// zero field keeps the default, -1 turns the bucket off.
func apiRateLimits(l *config.APILimits) *httpapi.RateLimits {
	rl := httpapi.DefaultRateLimits()
	if l == nil {
		return &rl
	}
	set := func(r *httpapi.Rate, perSecond float64, burst int) {
		switch {
		case perSecond < 0:
			*r = httpapi.Rate{}
			return
		case perSecond > 0:
			r.PerSecond = perSecond
		}
		if burst > 0 {
			r.Burst = burst
		}
	}
	set(&rl.Client, l.ClientPerSecond, l.ClientBurst)
	set(&rl.Scope, l.ScopePerSecond, l.ScopeBurst)
	set(&rl.CeremonyClient, l.CeremonyClientPerSecond, l.CeremonyClientBurst)
	set(&rl.CeremonyScope, l.CeremonyScopePerSecond, l.CeremonyScopeBurst)
	return &rl
}

// apiConnLimits are the config's connection caps (zero: httpapi's
// defaults).
func apiConnLimits(l *config.APILimits) httpapi.ConnLimits {
	if l == nil {
		return httpapi.ConnLimits{}
	}
	// Trusted proxies are not charged the per-source connection rate.
	cl := httpapi.ConnLimits{Max: l.MaxConns, PerClient: l.MaxConnsPerClient, Exempt: l.Proxies()}
	switch {
	case l.ConnPerSecond < 0:
		cl.Rate = httpapi.Rate{PerSecond: -1}
	case l.ConnPerSecond > 0 || l.ConnBurst > 0:
		cl.Rate = httpapi.DefaultConnRate
		if l.ConnPerSecond > 0 {
			cl.Rate.PerSecond = l.ConnPerSecond
		}
		if l.ConnBurst > 0 {
			cl.Rate.Burst = l.ConnBurst
		}
	}
	return cl
}

// serveMetrics serves the metrics on n.metricsLn, if any, until it is
// closed; a failure is logged, not fatal (the API does not depend on it).
func (n *Node) serveMetrics() {
	if n.metricsLn == nil {
		return
	}
	n.metricsSrv = httpapi.NewMetricsServer(n.metrics, n.log.With("component", "metrics"))
	go func() {
		if err := n.metricsSrv.Serve(n.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Warn("metrics listener", "err", err)
		}
	}()
}

// MetricsURL returns the base URL of the metrics listener (GET /metrics),
// or "" when the node serves no metrics.
func (n *Node) MetricsURL() string {
	if n.metricsLn == nil {
		return ""
	}
	return "http://" + n.metricsLn.Addr().String()
}
