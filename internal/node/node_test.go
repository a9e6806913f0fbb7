package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// fastLinks makes peer loss visible within about a second.
var fastLinks = transport.Options{PingInterval: 150 * time.Millisecond, DialTimeout: time.Second}

// testCluster is a 3-node threshold-2 cluster in this process, each node
// with its own SQLite store and real TCP sockets on ports the kernel chose.
type testCluster struct {
	t       *testing.T
	logs    syncBuffer // node 1's JSON log
	dir     string
	cfgs    []*config.Node
	nodes   []*Node
	clients []*client.Client
	stops   []func()
	// transport, if set, changes node i's transport options (fastLinks)
	// before it starts.
	transport func(i int, o *transport.Options)
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	return newShapeCluster(t, DevNodes, DevThreshold)
}

// newShapeCluster is newTestCluster with nodes nodes and threshold
// threshold.
func newShapeCluster(t *testing.T, nodes, threshold int) *testCluster {
	t.Helper()
	dir, cfgs, apiLns, peerLns := initListening(t, config.InitOptions{Nodes: nodes, Threshold: threshold})
	cfgs = writeAndLoad(t, dir, cfgs)
	tc := &testCluster{t: t, dir: dir, cfgs: cfgs,
		nodes: make([]*Node, len(cfgs)), clients: make([]*client.Client, len(cfgs)), stops: make([]func(), len(cfgs))}
	tc.startAll(apiLns, peerLns)
	return tc
}

// initListening runs config.InitCluster(opts) in a temporary directory
// and points every config at fresh loopback listeners, returned in id
// order (one API and one peer listener per node).
func initListening(t *testing.T, opts config.InitOptions) (dir string, cfgs []*config.Node, apiLns, peerLns []net.Listener) {
	t.Helper()
	dir = t.TempDir()
	opts.Out, opts.BasePort, opts.SkipPortCheck = dir, 1, true
	cfgs, err := config.InitCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	apiLns, peerLns = make([]net.Listener, len(cfgs)), make([]net.Listener, len(cfgs))
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
	return dir, cfgs, apiLns, peerLns
}

// writeAndLoad writes cfgs to dir and loads them back: the nodes run from
// the files, as keymesh dev does.
func writeAndLoad(t *testing.T, dir string, cfgs []*config.Node) []*config.Node {
	t.Helper()
	if err := config.WriteCluster(dir, cfgs); err != nil {
		t.Fatal(err)
	}
	cfgs, err := LoadCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfgs
}

// startAll starts every node of tc on its listeners and stops them at the
// end of the test.
func (tc *testCluster) startAll(apiLns, peerLns []net.Listener) {
	for i := range tc.cfgs {
		tc.start(i, apiLns[i], peerLns[i])
	}
	tc.t.Cleanup(func() {
		for i := range tc.stops {
			tc.stop(i)
		}
	})
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (tc *testCluster) start(i int, apiLn, peerLn net.Listener) {
	tc.t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if i == 0 {
		logger = slog.New(slog.NewJSONHandler(&tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	topts := fastLinks
	if tc.transport != nil {
		tc.transport(i, &topts)
	}
	n, err := New(Options{Config: tc.cfgs[i], Logger: logger, APIListener: apiLn, PeerListener: peerLn, MetricsListener: listen(tc.t, "127.0.0.1:0"), Transport: topts, AllowPlaintext: true})
	if err != nil {
		tc.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	tc.stops[i] = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tc.t.Errorf("node %d: Run: %v", i+1, err)
			}
		})
	}
	tc.nodes[i] = n
	c, err := client.New(n.APIURL())
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.clients[i] = c
}

func (tc *testCluster) stop(i int) {
	if tc.stops[i] != nil {
		tc.stops[i]()
	}
}

// restart starts node i again on the same addresses and data dir.
func (tc *testCluster) restart(i int) {
	tc.stop(i)
	c := tc.cfgs[i]
	tc.start(i, listen(tc.t, c.APIListen), listen(tc.t, c.PeerListen))
}

// eventually polls cond every 50 ms until it returns nil or 10 s pass.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readyz(url string) (int, api.ReadyStatus, error) {
	var st api.ReadyStatus
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return resp.StatusCode, st, err
}

func wantReady(t *testing.T, n *Node, status int, down ...uint16) {
	t.Helper()
	eventually(t, fmt.Sprintf("node %d /readyz %d down %v", n.ID(), status, down), func() error {
		code, st, err := readyz(n.APIURL())
		if err != nil {
			return err
		}
		if code != status || !slices.Equal(st.Down, down) || st.Ready != (status == 200) {
			return fmt.Errorf("got %d %+v", code, st)
		}
		return nil
	})
}

// reachable returns node i's view of its peers via keymesh_nodeInfo.
func (tc *testCluster) reachable(i int) (map[uint16]bool, *api.NodeInfo, error) {
	info, err := tc.clients[i].NodeInfo(context.Background())
	if err != nil {
		return nil, nil, err
	}
	m := map[uint16]bool{}
	for _, p := range info.Peers {
		m[p.ID] = p.Reachable
	}
	return m, info, nil
}

func TestCluster(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()

	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}
	keys := map[uint16]string{}
	for i := range tc.nodes {
		eventually(t, "every peer reachable", func() error {
			r, _, err := tc.reachable(i)
			if err != nil {
				return err
			}
			if len(r) != 2 {
				return fmt.Errorf("peers %v", r)
			}
			for id, ok := range r {
				if !ok || id == uint16(i+1) {
					return fmt.Errorf("peers %v", r)
				}
			}
			return nil
		})
		_, info, _ := tc.reachable(i)
		if info.NodeID != uint16(i+1) || info.N != 3 || info.Threshold != 2 || info.ClusterID != tc.cfgs[0].ClusterID || info.Version == "" {
			t.Fatalf("node %d info %+v", i+1, info)
		}
		keys[info.NodeID] = info.IdentityKey
	}
	// Each node's key is the one its peers pinned in their configs.
	for _, c := range tc.cfgs {
		for _, p := range c.Peers {
			if keys[p.ID] != p.IdentityKey {
				t.Fatalf("node %d reports key %s, node %d's config has %s", p.ID, keys[p.ID], c.ID, p.IdentityKey)
			}
		}
	}

	t.Run("json-rpc errors", func(t *testing.T) { testRPCErrors(t, tc.nodes[0].APIURL()) })

	t.Run("session", func(t *testing.T) {
		// A commit-reveal run between the three nodes over their real peer
		// links, through Node.RunSession: all agree on the output, and the
		// run is counted.
		ps := []round.PartyID{1, 2, 3}
		sessions, err := mpctest.NewCommitRevealSessions(ps)
		if err != nil {
			t.Fatal(err)
		}
		outs := make([]any, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i, n := range tc.nodes {
			wg.Go(func() { outs[i], errs[i] = n.RunSession(ctx, "commit-reveal", sessions[i]) })
		}
		wg.Wait()
		for i := range outs {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i+1, errs[i])
			}
			if outs[i] != outs[0] {
				t.Fatalf("node %d output differs", i+1)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := get(t, tc.nodes[0].MetricsURL()+"/metrics")
		for _, want := range []string{
			`keymesh_rpc_requests_total{code="0",method="keymesh_nodeInfo"}`,
			`keymesh_rpc_requests_total{code="-32601",method="unknown"}`,
			`keymesh_rpc_requests_total{code="-32700",method="invalid"} 1`,
			`keymesh_rpc_duration_seconds_bucket{method="keymesh_nodeInfo",le="+Inf"}`,
			`keymesh_peer_reachable{peer="2"} 1`,
			`keymesh_peer_reachable{peer="3"} 1`,
			`keymesh_mpc_sessions_total{protocol="commit-reveal",result="ok"} 1`,
			`keymesh_transport_bytes_sent_total `,
			`keymesh_transport_conns_rejected_total 0`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if strings.Contains(body, "keymesh_transport_bytes_sent_total 0\n") {
			t.Error("no bytes counted after a session")
		}
	})

	// State to find again after a restart.
	if err := tc.nodes[2].Store().Put(ctx, "test", "k", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	key3 := tc.nodes[2].IdentityKey()

	// One node down: 2 of 3 ≥ t = 2, still ready.
	tc.stop(2)
	wantReady(t, tc.nodes[0], 200, 3)
	wantReady(t, tc.nodes[1], 200, 3)
	eventually(t, "node 1 sees node 3 unreachable", func() error {
		r, _, err := tc.reachable(0)
		if err != nil {
			return err
		}
		if r[3] || !r[2] {
			return fmt.Errorf("peers %v", r)
		}
		return nil
	})
	if body := get(t, tc.nodes[0].MetricsURL()+"/metrics"); !strings.Contains(body, `keymesh_peer_reachable{peer="3"} 0`) {
		t.Error("metrics do not show peer 3 down")
	}

	// Two down: 1 of 3 < 2.
	tc.stop(1)
	wantReady(t, tc.nodes[0], 503, 2, 3)

	// Node 3 comes back with its data dir: same identity, same state, and
	// node 1 is ready again with it.
	tc.restart(2)
	if got := tc.nodes[2].IdentityKey(); got != key3 {
		t.Fatalf("identity changed across restart: %s → %s", key3, got)
	}
	v, err := tc.nodes[2].Store().Get(ctx, "test", "k")
	if err != nil || string(v) != "kept" {
		t.Fatalf("state after restart: %q %v", v, err)
	}
	starts, err := tc.nodes[2].Store().Records(ctx, "node/starts", 0, 0)
	if err != nil || len(starts) != 2 {
		t.Fatalf("node/starts: %d records, %v", len(starts), err)
	}
	wantReady(t, tc.nodes[0], 200, 2)
	wantReady(t, tc.nodes[2], 200, 2)

	// Node 1's log: JSON lines, each naming the node once, with the start,
	// request and peer events.
	logs := tc.logs.String()
	for _, want := range []string{`"msg":"node started"`, `"msg":"http request"`, `"rpc_methods":"keymesh_nodeInfo"`, `"component":"transport"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("node 1's log lacks %s", want)
		}
	}
	for line := range strings.Lines(logs) {
		if strings.Count(line, `"node":`) != 1 || !strings.Contains(line, `"node":1`) {
			t.Fatalf("log line does not name node 1 exactly once: %s", line)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testRPCErrors checks the JSON-RPC error codes over a real socket.
func testRPCErrors(t *testing.T, url string) {
	post := func(body string) (int, []byte) {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, c := range []struct {
		name, body string
		status     int
		code       int
	}{
		{"bad json", `{"jsonrpc":`, 200, api.CodeParseError},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"keymesh_nodeInfo"}`, 200, api.CodeInvalidRequest},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"keymesh_nope"}`, 200, api.CodeMethodNotFound},
		{"invalid params", `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":["x"]}`, 200, api.CodeInvalidParams},
		{"oversize body", `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":["` + strings.Repeat("x", api.MaxBodyBytes) + `"]}`, 413, api.CodeLimitExceeded},
	} {
		status, b := post(c.body)
		var r api.Response
		if err := json.Unmarshal(b, &r); err != nil || status != c.status || r.Error == nil || r.Error.Code != c.code {
			t.Errorf("%s: HTTP %d %s, want %d code %d", c.name, status, b, c.status, c.code)
		}
	}
	status, b := post(`[{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"},{"jsonrpc":"2.0","id":2,"method":"keymesh_nope"},{"jsonrpc":"2.0","method":"keymesh_nodeInfo"}]`)
	var rs []api.Response
	if err := json.Unmarshal(b, &rs); err != nil || status != 200 || len(rs) != 2 ||
		string(rs[0].ID) != "1" || rs[0].Error != nil || string(rs[1].ID) != "2" || rs[1].Error == nil || rs[1].Error.Code != api.CodeMethodNotFound {
		t.Errorf("batch: HTTP %d %s", status, b)
	}
	// The Go SDK surfaces the same codes as *api.Error.
	c, _ := client.New(url)
	var e *api.Error
	if err := c.Call(context.Background(), "keymesh_nope", nil, nil); !errors.As(err, &e) || e.Code != api.CodeMethodNotFound {
		t.Errorf("SDK: %v", err)
	}
}

// TestStoreIdentityMismatch: a data dir whose store belongs to another
// identity is refused.
func TestStoreIdentityMismatch(t *testing.T) {
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := func(c *config.Node) Options {
		return Options{Config: c, Logger: logger, APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0"), AllowPlaintext: true}
	}
	n, err := New(opts(cfgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	// Give node 1's store to node 2.
	c2 := *cfgs[1]
	c2.DataDir = filepath.Join(t.TempDir(), "x")
	if _, _, err := config.LoadOrCreateIdentity(c2.DataDir); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(cfgs[0].DataDir, StoreFile), filepath.Join(c2.DataDir, StoreFile))
	if _, err := New(opts(&c2)); err == nil || !strings.Contains(err.Error(), "belongs to identity") {
		t.Fatalf("mismatched store accepted: %v", err)
	}

	// And a node without an identity key does not make one up.
	c3 := *cfgs[1]
	c3.DataDir = t.TempDir()
	if _, err := New(opts(&c3)); err == nil || !strings.Contains(err.Error(), "no identity key") {
		t.Fatalf("missing identity: %v", err)
	}
	var _ store.Store = n.Store()
}
