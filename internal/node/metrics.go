package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keymesh/keymesh/internal/transport"
)

// registerTransportMetrics exposes the transport's running totals
// (transport.Stats) as Prometheus counters, read at scrape time.
func registerTransportMetrics(reg prometheus.Registerer, tr *transport.Transport) {
	for _, c := range []struct {
		name, help string
		get        func(transport.Stats) uint64
	}{
		{"keymesh_transport_bytes_sent_total", "Bytes sent to peers.", func(s transport.Stats) uint64 { return s.BytesSent }},
		{"keymesh_transport_bytes_received_total", "Bytes received from peers.", func(s transport.Stats) uint64 { return s.BytesReceived }},
		{"keymesh_transport_frames_sent_total", "Frames sent to peers.", func(s transport.Stats) uint64 { return s.FramesSent }},
		{"keymesh_transport_frames_received_total", "Frames received from peers.", func(s transport.Stats) uint64 { return s.FramesReceived }},
		{"keymesh_transport_messages_dropped_total", "Round messages not used (wrong sender, replay, overflow, expiry).", func(s transport.Stats) uint64 { return s.MessagesDropped }},
		{"keymesh_transport_calls_sent_total", "Peer RPC calls made.", func(s transport.Stats) uint64 { return s.CallsSent }},
		{"keymesh_transport_calls_served_total", "Peer RPC calls answered.", func(s transport.Stats) uint64 { return s.CallsServed }},
		{"keymesh_transport_conns_rejected_total", "Inbound peer connections refused (unknown key, failed handshake, overload).", func(s transport.Stats) uint64 { return s.ConnsRejected }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.get(tr.Stats())) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keymesh_peer_policy_mismatch",
		Help: "Peers refused now because their cluster policy digest differs from this node's (docs/operations.md, \"Cluster policy\")."},
		func() float64 {
			n := 0
			for _, p := range tr.Peers() {
				if p.PolicyMismatch {
					n++
				}
			}
			return float64(n)
		}))
}
