package client_test

// Tests as an attacker on the path between the SDK and a real node (real
// sockets, a production node that accepts only sealed requests): forged
// attestations, a forced KEM downgrade, forged plaintext answers and changed
// HTTP status codes. Executions are counted at the node, from its own
// metrics.

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/envelope"
	"github.com/keymesh/keymesh/internal/node"
)

// realNode is a running production node (plaintext refused).
type realNode struct {
	n       *node.Node
	url     string
	root    string // the cluster's sim platform key, hex
	metrics string // base URL of its metrics listener
	m       string // measurement, hex
}

// startCluster creates a 2-node cluster (config.InitCluster, as `keymesh
// cluster init` does) and starts the nodes whose ids are given; edit may
// change their configs first.
func startCluster(t *testing.T, edit func(*config.Node), ids ...uint16) map[uint16]*realNode {
	t.Helper()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: porttest.Block(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint16]*realNode{}
	for _, id := range ids {
		c := cfgs[id-1]
		if edit != nil {
			edit(c)
		}
		mln, err := net.Listen("tcp", "127.0.0.1:0") // the metrics, off the API port
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.New(node.Options{Config: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MetricsListener: mln})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		out[id] = &realNode{n: n, url: n.APIURL(), metrics: n.MetricsURL(), root: c.SimPlatformKey, m: n.Enclave().Measurement().String()}
	}
	for _, rn := range out {
		waitServing(t, rn.url)
	}
	return out
}

func waitServing(t *testing.T, u string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(u + "/attestation"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("node %s does not serve its attestation", u)
}

// executions returns how many times the node ran method (any result),
// from its /metrics.
func executions(t *testing.T, nodeURL, method string) int {
	t.Helper()
	resp, err := http.Get(nodeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "keymesh_rpc_requests_total{") || !strings.Contains(line, `method="`+method+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		total += int(v)
	}
	return total
}

// proxy is the attacker on the path: it forwards to the node, and rewrites
// what it is told to.
type proxy struct {
	srv *httptest.Server
	// attestation, if set, is served instead of the node's.
	attestation atomic.Pointer[[]byte]
	// rewrite, if set, changes the node's answer to a POST.
	rewrite atomic.Pointer[func(*http.Response) error]
	// drop, if set, answers a POST itself without forwarding it.
	drop atomic.Pointer[func(http.ResponseWriter)]
}

func newProxy(t *testing.T, nodeURL string) *proxy {
	t.Helper()
	target, _ := url.Parse(nodeURL)
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if f := p.rewrite.Load(); f != nil && resp.Request.Method == http.MethodPost {
			return (*f)(resp)
		}
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if doc := p.attestation.Load(); doc != nil && r.URL.Path == "/attestation" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(*doc)
			return
		}
		if f := p.drop.Load(); f != nil && r.Method == http.MethodPost {
			(*f)(w)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// forgedError is what the attacker writes: a plaintext JSON-RPC error with
// a message meant for the user.
func forgedError(code int) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": "session expired: approve again at https://evil.example"}})
	return b
}

func replaceBody(resp *http.Response, status int, ct string, body []byte) {
	resp.Body.Close()
	resp.StatusCode = status
	resp.Header.Set("Content-Type", ct)
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

func sealedTo(t *testing.T, u string, a client.Attestation) *client.Client {
	t.Helper()
	if a.Warn == nil {
		a.Warn = func(string) {}
	}
	c, err := client.New(u, client.WithAttestation(a))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forgeDocument plays the attacker who answers GET /attestation: a fresh sim
// platform key of its own signs a quote that claims measurement m and binds
// the attacker's own HPKE key.
func forgeDocument(t *testing.T, m string) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := enclave.NewKey(enclave.KeyHPKEXWing, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := (&attest.Keys{HPKEKEM: envelope.KEMXWing, HPKE: k.Public()}).MarshalBinary()
	fb, _ := (&attest.Freshness{Issued: time.Now(), Expires: time.Now().Add(time.Hour)}).MarshalBinary()
	mm, _ := enclave.ParseMeasurement(m)
	q := enclave.Quote{Platform: enclave.PlatformSim, Simulated: true, Measurement: mm, ReportData: attest.ReportData(kb, fb)}
	sig := ed25519.Sign(priv, append([]byte("keymesh sim quote v1\x00"), q.SignedBytes()...))
	q.Evidence = append(bytes.Clone(priv.Public().(ed25519.PublicKey)), sig...)
	qb, _ := q.MarshalBinary()
	doc, _ := json.Marshal(attest.Document{Keys: kb, Fresh: fb, Quote: qb})
	return doc
}

// TestForgedAttestationRefused: an on-path attacker serves a sim quote
// signed by a fresh platform key, claiming the pinned measurement and
// binding its own key. A client pinned to the cluster's root refuses it and
// sends nothing; a client without a root refuses every sim quote, with an
// error that says where the root comes from. The genuine node, through the
// same proxy, is accepted.
func TestForgedAttestationRefused(t *testing.T) {
	rn := startCluster(t, nil, 1)[1]
	p := newProxy(t, rn.url)
	doc := forgeDocument(t, rn.m)
	p.attestation.Store(&doc)
	before := executions(t, rn.metrics, api.MethodNodeInfo)

	pinned := client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{rn.root}}
	_, err := sealedTo(t, p.srv.URL, pinned).NodeInfo(context.Background())
	if !errors.Is(err, attest.ErrQuote) || !errors.Is(err, sim.ErrUntrustedPlatform) {
		t.Fatalf("forged quote, pinned root: %v", err)
	}
	tofu := client.Attestation{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []string{rn.root}}
	if _, err := sealedTo(t, p.srv.URL, tofu).NodeInfo(context.Background()); !errors.Is(err, sim.ErrUntrustedPlatform) {
		t.Fatalf("forged quote, trust on first use: %v", err)
	}
	_, err = sealedTo(t, p.srv.URL, client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true}).NodeInfo(context.Background())
	if !errors.Is(err, attest.ErrNoRoot) || !strings.Contains(err.Error(), "keymesh cluster init") {
		t.Fatalf("no root: %v", err)
	}
	if n := executions(t, rn.metrics, api.MethodNodeInfo); n != before {
		t.Fatalf("the node ran %d calls after refused attestations", n-before)
	}
	// A root from another cluster does not verify this one's quotes.
	other := hex.EncodeToString(bytes.Repeat([]byte{1}, 32))
	p.attestation.Store(nil)
	if _, err := sealedTo(t, p.srv.URL, client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{other}}).NodeInfo(context.Background()); !errors.Is(err, sim.ErrUntrustedPlatform) {
		t.Fatalf("another cluster's root: %v", err)
	}
	// The genuine node through the same path.
	if _, err := sealedTo(t, p.srv.URL, pinned).NodeInfo(context.Background()); err != nil {
		t.Fatalf("genuine node: %v", err)
	}
}

// TestKEMDowngradeRefused: a genuine node whose request key is X25519 is
// refused by a client that requires X-Wing (the default); a client that
// lowers its minimum to X25519 accepts it.
func TestKEMDowngradeRefused(t *testing.T) {
	rn := startCluster(t, func(c *config.Node) { c.RequestKEM = config.KEMX25519 }, 1)[1]
	a := client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{rn.root}}
	if _, err := sealedTo(t, rn.url, a).NodeInfo(context.Background()); !errors.Is(err, attest.ErrWeakKEM) {
		t.Fatalf("X25519 document, X-Wing client: %v", err)
	}
	a.MinKEM = "x25519"
	if _, err := sealedTo(t, rn.url, a).NodeInfo(context.Background()); err != nil {
		t.Fatalf("X25519 document, client accepting X25519: %v", err)
	}
}

// TestForgedPlaintextErrors: the attacker lets a sealed call reach the node
// and replaces the sealed answer with a plaintext "unknown key" error (the
// code that used to make the SDK attest again and resend), or answers such
// an error without forwarding. The call runs at most once at the node; the
// SDK reports an *UnauthenticatedError and shows none of the forged text.
func TestForgedPlaintextErrors(t *testing.T) {
	nodes := startCluster(t, nil, 1)
	rn := nodes[1]
	p := newProxy(t, rn.url)
	a := client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true, SimPlatformKeys: []string{rn.root}}
	c := sealedTo(t, p.srv.URL, a)
	ctx := context.Background()
	if _, err := c.NodeInfo(ctx); err != nil { // attests through the proxy
		t.Fatal(err)
	}
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.ScopeConfig{RPID: "app.example", Origins: []string{"https://app.example"}, Mode: "developer", SessionTTL: time.Hour}

	for _, code := range []int{api.CodeSealedUnknownKey, api.CodeSealedExpired, api.CodeInternalError} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			forged := forgedError(code)
			rw := func(resp *http.Response) error {
				replaceBody(resp, http.StatusBadRequest, "application/json", forged)
				return nil
			}
			p.rewrite.Store(&rw)
			defer p.rewrite.Store(nil)
			method := "keymesh_createScope"
			before := executions(t, rn.metrics, method)
			_, err := c.CreateScope(ctx, dev, cfg)
			var ue *client.UnauthenticatedError
			if !errors.As(err, &ue) || !errors.Is(err, client.ErrUnauthenticated) || ue.ClaimedCode != code || ue.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("forged plaintext error: %v", err)
			}
			var ae *api.Error
			if errors.As(err, &ae) {
				t.Fatalf("the forged error was returned as the node's: %v", err)
			}
			if strings.Contains(err.Error(), "evil.example") || strings.Contains(err.Error(), "approve again") {
				t.Fatalf("the forged text reached the user: %v", err)
			}
			if got := executions(t, rn.metrics, method) - before; got != 1 {
				t.Fatalf("one CreateScope call ran %d times at the node", got)
			}
		})
	}

	// Not forwarded at all: the forged "unknown key" alone makes nothing run.
	drop := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(forgedError(api.CodeSealedUnknownKey))
	}
	p.drop.Store(&drop)
	before := executions(t, rn.metrics, api.MethodNodeInfo)
	if _, err := c.NodeInfo(ctx); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("dropped call: %v", err)
	}
	p.drop.Store(nil)
	if got := executions(t, rn.metrics, api.MethodNodeInfo) - before; got != 0 {
		t.Fatalf("a dropped call ran %d times", got)
	}
	// The client keeps working once the attacker stops.
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStatusChangedOnPath: the node seals its HTTP status inside the
// answer; an attacker who changes the status on the path (a success turned
// into an error, an error into a success) is detected, in HPKE and in
// compatibility mode, and the answer is not used.
func TestStatusChangedOnPath(t *testing.T) {
	rn := startCluster(t, nil, 1)[1]
	p := newProxy(t, rn.url)
	ctx := context.Background()
	for _, compat := range []bool{false, true} {
		t.Run(fmt.Sprintf("compat=%v", compat), func(t *testing.T) {
			c := sealedTo(t, p.srv.URL, client.Attestation{Measurements: []string{rn.m}, AllowSimulated: true,
				SimPlatformKeys: []string{rn.root}, Compat: compat})
			if _, err := c.NodeInfo(ctx); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				method string
				to     int
			}{
				{api.MethodNodeInfo, http.StatusInternalServerError}, // a success made an error
				{"keymesh_noSuchMethod", http.StatusAccepted},        // an error made a success
			} {
				var seen atomic.Int64
				rw := func(resp *http.Response) error {
					seen.Store(int64(resp.StatusCode))
					resp.StatusCode = tc.to
					return nil
				}
				p.rewrite.Store(&rw)
				err := c.Call(ctx, tc.method, nil, nil)
				p.rewrite.Store(nil)
				var ue *client.UnauthenticatedError
				if !errors.As(err, &ue) || ue.SealedStatus != int(seen.Load()) || ue.HTTPStatus != tc.to {
					t.Fatalf("%s: status %d changed to %d: %v", tc.method, seen.Load(), tc.to, err)
				}
			}
			// Unchanged, the node's own error comes through, authenticated.
			var ae *api.Error
			if err := c.Call(ctx, "keymesh_noSuchMethod", nil, nil); !errors.As(err, &ae) || ae.Code != api.CodeMethodNotFound {
				t.Fatalf("sealed error: %v", err)
			}
		})
	}
}
