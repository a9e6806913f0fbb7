package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keymesh/keymesh/api"
)

// Metrics are a node's Prometheus metrics, in a registry of their own (not
// the global one, so that several nodes in one process, as in keymesh dev,
// keep separate counters):
//
//	keymesh_rpc_requests_total{method,code}   JSON-RPC requests; code "0" is success
//	keymesh_rpc_duration_seconds{method}      JSON-RPC handling latency
//	keymesh_http_requests_total{path,status}  HTTP requests
//	keymesh_peer_reachable{peer}              1 if the peer is reachable, else 0
//	keymesh_mpc_sessions_total{protocol,result}  MPC sessions run; result ok or error
//
//	keymesh_process_instance{instance}        1; instance is random per process
//
// plus the standard go_* and process_* collectors. keymesh_process_instance
// tells processes apart where process_start_time_seconds (to 10 ms) does
// not: nodes started together by a script, or in containers with equal
// pids; the nodes of keymesh dev, in one process, share it.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	http     *prometheus.CounterVec
	sessions *prometheus.CounterVec
}

// NewMetrics creates the metrics. peers, if not nil, is called at every
// scrape for the peer reachability gauge.
func NewMetrics(peers func() []api.PeerInfo) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keymesh_rpc_requests_total",
			Help: "JSON-RPC requests by method and result code (0 for success).",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keymesh_rpc_duration_seconds",
			Help:    "JSON-RPC request handling latency by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keymesh_http_requests_total",
			Help: "HTTP requests by path and status.",
		}, []string{"path", "status"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keymesh_mpc_sessions_total",
			Help: "MPC sessions run by this node, by protocol and result (ok or error).",
		}, []string{"protocol", "result"}),
	}
	instance := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "keymesh_process_instance",
		Help:        "1, labelled with an id drawn at random when the process started.",
		ConstLabels: prometheus.Labels{"instance": processInstance},
	})
	instance.Set(1)
	m.reg.MustRegister(instance, m.requests, m.duration, m.http, m.sessions,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if peers != nil {
		m.reg.MustRegister(peerCollector(peers))
	}
	return m
}

// processInstance is keymesh_process_instance's label: random, one per
// process.
var processInstance = func() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// Registry returns the registry, for other components to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SessionDone counts one MPC session of protocol that ended with err.
func (m *Metrics) SessionDone(protocol string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.sessions.WithLabelValues(protocol, result).Inc()
}

func (m *Metrics) observeRPC(method string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

func (m *Metrics) observeHTTP(path string, status int) {
	m.http.WithLabelValues(path, strconv.Itoa(status)).Inc()
}

type peerCollector func() []api.PeerInfo

var peerDesc = prometheus.NewDesc("keymesh_peer_reachable",
	"1 if the peer transport currently reaches the peer, 0 if not.", []string{"peer"}, nil)

func (peerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- peerDesc }

func (f peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range f() {
		v := 0.0
		if p.Reachable {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(peerDesc, prometheus.GaugeValue, v, strconv.Itoa(int(p.ID)))
	}
}

// NewMetricsServer returns the server of the node's metrics listener
// (config metrics_listen): GET /metrics and nothing else, with NewServer's
// timeouts. The metrics are not served on the public API port.
func NewMetricsServer(m *Metrics, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := NewServer(mux, logger)
	s.ConnContext = nil
	return s
}
