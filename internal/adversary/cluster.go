//go:build keymesh_adversary

package adversary

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/transport"
)

// Options shape a Cluster. Zero values take the defaults named beside them.
type Options struct {
	Nodes     int // default 3
	Threshold int // default 2
	// Transport overrides the nodes' transport timing; zero fields take
	// PingInterval 250 ms, PingTimeout 10 s, DialTimeout 1 s and
	// SessionTimeout 60 s (a loaded machine runs keygen under -race slowly;
	// no test here waits for a timeout).
	Transport transport.Options
	// Demo also runs the demo services (node.Options.Demo: the counter of
	// docs/services.md) on every node.
	Demo bool
}

// Cluster is an n-node cluster of real nodes in this process, each with
// its own data dir and SQLite store, on ports the kernel chose.
type Cluster struct {
	t    testing.TB
	dir  string
	cfgs []*config.Node
	opts transport.Options
	demo bool

	mu      sync.Mutex
	nodes   []*node.Node
	clients []*client.Client
	stops   []func()
	logs    []*syncBuffer
	evil    map[uint16]*Evil
}

// NewCluster starts a cluster and waits until every node is ready; the
// cluster stops when the test ends.
func NewCluster(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Threshold == 0 {
		o.Threshold = 2
	}
	topts := o.Transport
	if topts.PingInterval == 0 {
		topts.PingInterval = 250 * time.Millisecond
	}
	if topts.PingTimeout == 0 {
		// A stopped node is noticed at once from its closed connections;
		// the ping timeout only catches silent failures, which these tests
		// do not stage, and a short one breaks links when a loaded machine
		// starves the process (keygen under -race).
		topts.PingTimeout = 10 * time.Second
	}
	if topts.DialTimeout == 0 {
		topts.DialTimeout = time.Second
	}
	if topts.SessionTimeout == 0 {
		topts.SessionTimeout = 60 * time.Second
	}
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{
		Nodes: o.Nodes, Threshold: o.Threshold, Out: dir, BasePort: 1, SkipPortCheck: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	apiLns, peerLns := make([]net.Listener, len(cfgs)), make([]net.Listener, len(cfgs))
	for i := range cfgs {
		apiLns[i], peerLns[i] = listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	}
	for i, c := range cfgs {
		c.APIListen, c.PeerListen = apiLns[i].Addr().String(), peerLns[i].Addr().String()
		for j := range c.Peers {
			p := &c.Peers[j]
			p.PeerAddr = peerLns[p.ID-1].Addr().String()
			p.APIURL = "http://" + apiLns[p.ID-1].Addr().String()
		}
	}
	if err := config.WriteCluster(dir, cfgs); err != nil {
		t.Fatal(err)
	}
	if cfgs, err = node.LoadCluster(dir); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir, cfgs: cfgs, opts: topts, demo: o.Demo,
		nodes: make([]*node.Node, len(cfgs)), clients: make([]*client.Client, len(cfgs)),
		stops: make([]func(), len(cfgs)), logs: make([]*syncBuffer, len(cfgs)), evil: map[uint16]*Evil{}}
	for i := range cfgs {
		c.logs[i] = &syncBuffer{}
		c.start(i, apiLns[i], peerLns[i])
	}
	t.Cleanup(func() {
		for i := range c.stops {
			c.stopIndex(i)
		}
	})
	c.WaitReady()
	return c
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (c *Cluster) start(i int, apiLn, peerLn net.Listener) {
	c.t.Helper()
	logger := slog.New(slog.NewJSONHandler(c.logs[i], &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := node.New(node.Options{Config: c.cfgs[i], Logger: logger, APIListener: apiLn, PeerListener: peerLn, MetricsListener: listen(c.t, "127.0.0.1:0"),
		Transport: c.opts, AllowPlaintext: true, Demo: c.demo})
	if err != nil {
		c.t.Fatal(err)
	}
	// Every node's outgoing messages pass through its (empty) rules from
	// the start, so that Evil can make any node misbehave later without
	// changing a hook while sessions run.
	c.mu.Lock()
	ev := c.evil[uint16(i+1)]
	if ev == nil {
		ev = &Evil{c: c, id: uint16(i + 1)}
		c.evil[uint16(i+1)] = ev
	}
	c.mu.Unlock()
	ev.install(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	cl, err := client.New(n.APIURL())
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[i], c.clients[i] = n, cl
	c.stops[i] = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				c.t.Errorf("node %d: Run: %v", i+1, err)
			}
		})
	}
	c.mu.Unlock()
}

func (c *Cluster) index(id uint16) int {
	if id == 0 || int(id) > len(c.cfgs) {
		c.t.Fatalf("adversary: no node %d in a cluster of %d", id, len(c.cfgs))
	}
	return int(id) - 1
}

func (c *Cluster) stopIndex(i int) {
	c.mu.Lock()
	stop := c.stops[i]
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// N returns the number of nodes.
func (c *Cluster) N() int { return len(c.cfgs) }

// Node returns node id (1-based) as it runs now (a Restart replaces it).
func (c *Cluster) Node(id uint16) *node.Node {
	i := c.index(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Client returns an SDK client of node id's API.
func (c *Cluster) Client(id uint16) *client.Client {
	i := c.index(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clients[i]
}

// Log returns what node id has logged (JSON lines, level Debug and up),
// across restarts.
func (c *Cluster) Log(id uint16) string { return c.logs[c.index(id)].String() }

// Stop stops node id.
func (c *Cluster) Stop(id uint16) { c.stopIndex(c.index(id)) }

// Restart stops node id and starts it again on the same addresses and data
// dir, and waits until the cluster is ready again. An Evil node keeps its
// rules.
func (c *Cluster) Restart(id uint16) {
	c.t.Helper()
	i := c.index(id)
	c.stopIndex(i)
	cfg := c.cfgs[i]
	c.start(i, listen(c.t, cfg.APIListen), listen(c.t, cfg.PeerListen))
	c.WaitReady()
}

// WaitReady waits (at most 20 s) until every node reaches every other.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for id := uint16(1); int(id) <= c.N(); id++ {
		for {
			n := c.Node(id)
			st := n.Ready()
			if st.Reachable == c.N() {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("adversary: node %d reaches %d of %d nodes after 20 s", id, st.Reachable, c.N())
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// Metrics returns node id's /metrics page.
func (c *Cluster) Metrics(id uint16) string {
	c.t.Helper()
	resp, err := http.Get(c.Node(id).MetricsURL() + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	return b.String()
}

// Evil returns node id as a node that misbehaves on command (evil.go). The
// same *Evil is returned for the same id; it stays the attacker across
// restarts of the node.
func (c *Cluster) Evil(id uint16) *Evil {
	c.index(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evil[id]
}

// syncBuffer is a bytes.Buffer safe for a logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
