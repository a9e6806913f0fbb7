package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/transport"
)

// cluster is a 3-node, threshold-2 cluster in this process: each node has
// its own SQLite store, sim enclave sealing its shares, mTLS peer transport
// and JSON-RPC API on real 127.0.0.1 sockets, and a wallet Service.
type cluster struct {
	t     testing.TB
	cfgs  []*config.Node
	nodes []*testNode
	auth  Authorizer
	opts  func(*Options) // adjusts each node's wallet options
}

type testNode struct {
	cfg  *config.Node
	tr   *transport.Transport
	svc  *Service
	st   *sqlite.DB
	url  string
	stop func()
}

var fastLinks = transport.Options{PingInterval: 150 * time.Millisecond, DialTimeout: time.Second}

func newCluster(t testing.TB, authz Authorizer, opts func(*Options)) *cluster {
	t.Helper()
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	apiLns, peerLns := make([]net.Listener, 3), make([]net.Listener, 3)
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
	for i := range cfgs {
		if cfgs[i], err = config.Load(filepath.Join(dir, config.FileName(uint16(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{t: t, cfgs: cfgs, nodes: make([]*testNode, 3), auth: authz, opts: opts}
	for i := range cfgs {
		c.start(i, apiLns[i], peerLns[i])
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitLinks()
	return c
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // a restarted node's port may linger briefly
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

func (c *cluster) start(i int, apiLn, peerLn net.Listener) {
	t := c.t
	t.Helper()
	cfg := c.cfgs[i]
	ident, _, err := config.LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "wallet-test.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	encl, err := sim.Open(sim.Config{Dir: filepath.Join(cfg.DataDir, "enclave-sim")})
	if err != nil {
		t.Fatal(err)
	}
	topts := fastLinks
	topts.Self, topts.Identity, topts.Logger = cfg, ident, testLogger(i)
	tr, err := transport.New(topts)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Config: cfg, Transport: tr, Store: st, Sealer: encl, Auth: c.auth,
		RunSession: func(ctx context.Context, _ string, s *round.Session) (any, error) { return tr.RunSession(ctx, s) },
		Logger:     testLogger(i),
		RawDigest:  func(_ context.Context, scope string) bool { return scope == "app" },
	}
	if c.opts != nil {
		c.opts(&o)
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	reg := httpapi.NewRegistry()
	svc.Register(reg)
	srv := httpapi.NewServer(httpapi.NewHandler(httpapi.Options{Registry: reg, Logger: testLogger(i)}), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(apiLn) })
	wg.Go(func() { tr.Serve(ctx, peerLn) })
	var once sync.Once
	n := &testNode{cfg: cfg, tr: tr, svc: svc, st: st, url: "http://" + apiLn.Addr().String()}
	n.stop = func() {
		once.Do(func() {
			cancel()
			srv.Close()
			tr.Close()
			wg.Wait()
			st.Close()
			ident.Destroy()
		})
	}
	c.nodes[i] = n
}

func (c *cluster) stop(i int) {
	if c.nodes[i] != nil {
		c.nodes[i].stop()
	}
}

func (c *cluster) restart(i int) {
	c.stop(i)
	cfg := c.cfgs[i]
	c.start(i, listen(c.t, cfg.APIListen), listen(c.t, cfg.PeerListen))
}

// waitLinks waits until every running node sees every other running node.
func (c *cluster) waitLinks(down ...int) {
	c.t.Helper()
	isDown := map[uint16]bool{}
	for _, d := range down {
		isDown[uint16(d+1)] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, n := range c.nodes {
		if isDown[uint16(i+1)] {
			continue
		}
		for {
			ok := true
			for _, p := range n.tr.Peers() {
				if p.Reachable == isDown[p.ID] {
					ok = false
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: peer links not settled: %+v", i+1, n.tr.Peers())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// call sends one JSON-RPC request to node i with proofs in X-Keymesh-Auth.
func (c *cluster) call(i int, proofs, method string, params, result any) error {
	return rpc(c.nodes[i].url, proofs, method, params, result)
}

func rpc(url, proofs, method string, params, result any) error {
	req := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		req["params"] = params
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	if proofs != "" {
		hr.Header.Set(httpapi.ProofsHeader, proofs)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r api.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if r.Error != nil {
		return r.Error
	}
	if result != nil {
		return json.Unmarshal(r.Result, result)
	}
	return nil
}

// apiCode returns err's JSON-RPC code, or 0.
func apiCode(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// testLogger logs to stderr when KEYMESH_TEST_LOG is set, else nowhere.
func testLogger(i int) *slog.Logger {
	if os.Getenv("KEYMESH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i+1)
}
