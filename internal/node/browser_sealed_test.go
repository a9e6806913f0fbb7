package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/auth/web"
	"github.com/keymesh/keymesh/internal/porttest"
	"github.com/keymesh/keymesh/internal/record"
)

// serveBundle serves the login bundle o from an app of its own on
// localhost (a port block of porttest), under web.CSPFor(o.Node), with
// no route to any node; it returns the app's origin.
func serveBundle(t *testing.T, o web.Options) string {
	t.Helper()
	port := porttest.Block(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := web.WriteBundleWith(dir, o); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "the app serves files only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", web.CSPFor(o.Node))
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://localhost:" + strconv.Itoa(port)
}

// browserPage is a headless Chromium tab with a virtual authenticator on
// page, and the requests the tab sent (method and URL, in order).
type browserPage struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	sent []string
}

func newBrowserPage(t *testing.T, bin, page string) *browserPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	bctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	t.Cleanup(cancel)
	p := &browserPage{t: t, ctx: bctx}
	if err := chromedp.Listen(bctx, func(ev any) {
		var req *network.Request
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			req = e.Request
		case network.EventRequestWillBeSent:
			req = e.Request
		}
		if req != nil {
			p.mu.Lock()
			p.sent = append(p.sent, req.Method+" "+req.URL)
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(bctx,
		virtualAuthenticator,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("register")),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	return p
}

func (p *browserPage) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// click clicks button and returns the page's status state and text once
// it is "ok" or "error".
func (p *browserPage) click(button string) (state, text string) {
	p.t.Helper()
	p.eval(`document.getElementById("status").dataset.state = "idle", ""`)
	if err := chromedp.Do(p.ctx,
		chromedp.Click(chromedp.ID(button)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`["ok", "error"].includes(document.getElementById("status").dataset.state)`, chromedp.WithPollingTimeout(90*time.Second))(ctx, tg)
			return err
		}),
	); err != nil {
		p.t.Fatalf("browser: %s: %v", button, err)
	}
	return p.eval(`document.getElementById("status").dataset.state`), p.eval(`document.getElementById("status").textContent`)
}

func (p *browserPage) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent...)
}

// TestPasskeyBrowserSealed drives headless Chromium (virtual WebAuthn
// authenticator) through the login bundle served by an app from its own
// origin, talking directly — no proxy — to node 0 of a real 3-node
// cluster that accepts only sealed requests: the page verifies the node's
// attestation against the sim platform key and the measurement pinned in
// the bundle (keymesh login-bundle --platform-key, --measurement), seals
// its calls in WebCrypto (Passport's compatibility format, to the
// attested RSA key), and the node grants CORS for the ceremonies to the
// scope's origin. A passkey registers, signs in, and the session key in
// the browser approves an operation that every node authorises. As the
// attacker, the same page (an origin of the scope) seals a call that is
// not a ceremony: the node runs it (as it would for curl), but the
// browser keeps the answer from the page (no CORS).
func TestPasskeyBrowserSealed(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no Chromium found: run scripts/setup-browser (apt-get install -y chromium) or set KEYMESH_CHROMIUM")
	}
	nodes := newSealedCluster(t)
	ctx := context.Background()
	nodeURL := nodes[0].APIURL() + "/"
	m := nodes[0].Enclave().Measurement().String()
	origin := serveBundle(t, web.Options{Node: nodeURL, SimRoots: []string{simRoot(nodes[0])}, Measurements: []string{m}})

	c := sealedClient(t, nodes[0].APIURL(), client.Attestation{Measurements: []string{m}, AllowSimulated: true, SimPlatformKeys: []string{simRoot(nodes[0])}})
	dev, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{origin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, "scope on every node", func() error { _, _, err := n.Auth().State().Scope(ctx, sc.ID); return err })
	}

	p := newBrowserPage(t, bin, fmt.Sprintf("%s/index.html?scope=%s", origin, sc.ID))
	if s := p.eval(`document.getElementById("sealing").textContent`); !strings.Contains(s, "sealed") {
		t.Fatalf("the page does not say it seals: %q", s)
	}
	start := time.Now()
	if st, text := p.click("register"); st != "ok" {
		t.Fatalf("register: %s", text)
	}
	alice := p.eval(`document.body.dataset.registered || ""`)
	if !record.IsDerivedAccountID(alice) {
		t.Fatalf("registered %q", alice)
	}
	creds, err := nodes[0].Auth().State().Credentials(ctx, sc.ID, alice)
	if err != nil || len(creds) != 1 || creds[0].Kind != record.CredPasskey {
		t.Fatalf("stored credentials: %v %v", creds, err)
	}
	if st, text := p.click("login"); st != "ok" {
		t.Fatalf("login: %s", text)
	}
	t.Logf("register + sign in through sealed calls, from the browser: %v", time.Since(start).Round(time.Millisecond))
	sessRec := p.eval(`document.body.dataset.session || ""`)
	if sessRec == "" {
		t.Fatal("no session record")
	}
	// Every request went to the app (the page's files) or straight to
	// node 0, and every call to the node was sealed: nothing reached a
	// proxy, and the node refuses plaintext.
	posts, preflights, attestations := 0, 0, 0
	for _, r := range p.requests() {
		switch {
		case strings.HasPrefix(r, "GET "+origin+"/"):
		case strings.HasPrefix(r, "GET "+nodeURL+"attestation?"):
			attestations++
		case r == "OPTIONS "+nodeURL+"?scope="+sc.ID: // the CORS preflight
			preflights++
		case r == "POST "+nodeURL+"?scope="+sc.ID:
			posts++
		default:
			t.Errorf("unexpected request %s", r)
		}
	}
	// One attestation serves the four calls, and one preflight (kept for
	// Access-Control-Max-Age) too.
	if posts != 4 || attestations != 1 || preflights != 1 {
		t.Errorf("%d calls to the node (want the 4 ceremonies), %d attestations, %d preflights (want 1 each)", posts, attestations, preflights)
	}

	// The session key in the browser approves an operation; every node
	// authorises it itself.
	op, a := newApproval(sc.ID, alice, "personal_sign")
	sig := p.eval(`keymeshSign("` + base64.RawURLEncoding.EncodeToString(a.SigningMessage()) + `")`)
	h := client.Proofs(client.Proof{Approval: base64.RawURLEncoding.EncodeToString(a.Marshal()), Session: sessRec, Sig: sig})
	for _, n := range nodes {
		eventually(t, "account on every node", func() error { return hasAccount(n, sc.ID, alice) })
		if _, err := n.Auth().Authorize(ctx, op, h); err != nil {
			t.Fatalf("node %d: Authorize with the browser's session: %v", n.ID(), err)
		}
	}

	// The attacker's page, on the scope's origin, seals a call that is
	// not a ceremony with the bundle's own code: the browser refuses it
	// the answer.
	got := p.eval(fmt.Sprintf(`(async () => {
		const u = new URL(%q); u.searchParams.set("scope", %q);
		try { await sealedCall(u, "keymesh_nodeInfo", %q, JSON.stringify({jsonrpc: "2.0", id: 1, method: "keymesh_nodeInfo"})); return "read"; }
		catch (e) { return "refused: " + e; }
	})()`, nodeURL, sc.ID, sc.ID))
	if !strings.HasPrefix(got, "refused: TypeError") {
		t.Fatalf("a page on the scope's origin read a sealed keymesh_nodeInfo answer: %s", got)
	}
}

// newApproval returns an operation and an approval of it.
func newApproval(scope, account, method string) (auth.Operation, *record.Approval) {
	op := auth.Operation{Scope: scope, Account: account, Method: method}
	rand.Read(op.Hash[:])
	rand.Read(op.Request[:])
	a := &record.Approval{Scope: scope, Account: account, Method: method, Hash: op.Hash, Expiry: time.Now().Add(time.Minute).Unix()}
	rand.Read(a.Nonce[:])
	return op, a
}

// TestPasskeyBrowserWrongPin: a bundle pinning another platform key than
// the cluster's fetches the node's attestation, refuses it, says why, and
// sends the node nothing else — no ceremony, sealed or not.
func TestPasskeyBrowserWrongPin(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no Chromium found: run scripts/setup-browser (apt-get install -y chromium) or set KEYMESH_CHROMIUM")
	}
	nodes := newSealedCluster(t)
	ctx := context.Background()
	nodeURL := nodes[0].APIURL() + "/"
	wrong := strings.Repeat("ab", 32)
	origin := serveBundle(t, web.Options{Node: nodeURL, SimRoots: []string{wrong}})
	c := sealedClient(t, nodes[0].APIURL(), client.Attestation{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []string{simRoot(nodes[0])}})
	dev, _ := client.GenerateKey("p256")
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{origin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := newBrowserPage(t, bin, fmt.Sprintf("%s/index.html?scope=%s", origin, sc.ID))
	st, text := p.click("register")
	if st != "error" || !strings.Contains(text, "not signed by the platform key pinned") || !strings.Contains(text, "refusing to send anything") {
		t.Fatalf("register with a wrong pin: %s: %s", st, text)
	}
	for _, r := range p.requests() {
		if strings.HasPrefix(r, "GET "+origin+"/") || strings.HasPrefix(r, "GET "+nodeURL+"attestation?") {
			continue
		}
		t.Errorf("the page sent %s after refusing the attestation", r)
	}
}

// TestCeremonyFromAnotherScopesOrigin: CORS grants scope A's origin the
// ceremonies of any scope it names, so a page of A can run scope B's
// ceremonies and read the answers (initiate answers are public anyway);
// what stops it is WebAuthn: the credential the browser makes on A's page
// names A's origin in its clientDataJSON, which B does not list, so B's
// registration (and authentication) refuses it — on a sealed-only cluster,
// with the assertion made exactly as a browser on A would.
func TestCeremonyFromAnotherScopesOrigin(t *testing.T) {
	nodes := newSealedCluster(t)
	ctx := context.Background()
	m := nodes[0].Enclave().Measurement().String()
	c := sealedClient(t, nodes[0].APIURL(), client.Attestation{Measurements: []string{m}, AllowSimulated: true, SimPlatformKeys: []string{simRoot(nodes[0])}})
	dev, _ := client.GenerateKey("p256")
	const originA, originB = "https://app-a.localhost", "https://app-b.localhost"
	scB, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{originB}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	register := func(origin string) error {
		regKey, _ := client.GenerateKey("p256")
		account := client.DerivedAccountID(regKey)
		init, err := c.InitiateKeyedRegistration(client.WithScope(ctx, scB.ID), scB.ID, account, regKey)
		if err != nil {
			return fmt.Errorf("initiate: %w", err)
		}
		ch, _ := base64.RawURLEncoding.DecodeString(init.Challenge)
		_, err = c.CompleteKeyedRegistration(client.WithScope(ctx, scB.ID), init, authtest.New("localhost", origin).Create(ch), regKey)
		return err
	}
	err = register(originA)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeAuthBadProof || !strings.Contains(ae.Message, "origin") {
		t.Fatalf("a passkey made on scope A's origin registered in scope B, or was refused for another reason: %v", err)
	}
	t.Logf("refused: %v", err)
	if err := register(originB); err != nil {
		t.Fatalf("the same ceremony on B's own origin: %v", err)
	}
}

// TestPasskeyBrowserMaliciousGateway: the page talks to node 0 through a
// gateway that tampers with what it relays. The page refuses an
// attestation whose keys were changed (the quote does not cover them) and
// one made for another challenge (a replay), and sends no call after
// either; and it refuses a sealed answer changed in transit.
func TestPasskeyBrowserMaliciousGateway(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no Chromium found: run scripts/setup-browser (apt-get install -y chromium) or set KEYMESH_CHROMIUM")
	}
	nodes := newSealedCluster(t)
	ctx := context.Background()
	target, err := url.Parse(nodes[0].APIURL())
	if err != nil {
		t.Fatal(err)
	}
	// A document the gateway kept from earlier, made for another challenge.
	old, err := client.FetchAttestationFor(ctx, nil, nodes[0].APIURL(), []byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		mode  string
		posts int
	)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		mu.Lock()
		m := mode
		if resp.Request.Method == http.MethodPost || resp.Request.Method == http.MethodOptions {
			posts++
		}
		mu.Unlock()
		if resp.StatusCode != http.StatusOK || (m == "answer") != (resp.Request.Method == http.MethodPost) {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		switch m {
		case "keys": // the gateway swaps a byte of the attested keys
			var doc api.AttestationDocument
			if err := json.Unmarshal(body, &doc); err != nil {
				return err
			}
			doc.Keys[len(doc.Keys)-1] ^= 1
			body, _ = json.Marshal(doc)
		case "replay":
			body, _ = json.Marshal(old)
		case "answer": // a sealed field changed in transit
			var fields map[string]string
			if err := json.Unmarshal(body, &fields); err != nil {
				return err
			}
			r := []byte(fields["rpc"])
			r[len(r)/2] ^= 'A' ^ 'B'
			fields["rpc"] = string(r)
			body, _ = json.Marshal(fields)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	port := porttest.Block(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	gw := &http.Server{Handler: proxy}
	go gw.Serve(ln)
	t.Cleanup(func() { gw.Close() })
	gwURL := "http://127.0.0.1:" + strconv.Itoa(port) + "/"

	origin := serveBundle(t, web.Options{Node: gwURL, SimRoots: []string{simRoot(nodes[0])}})
	c := sealedClient(t, nodes[0].APIURL(), client.Attestation{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []string{simRoot(nodes[0])}})
	dev, _ := client.GenerateKey("p256")
	sc, err := c.CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{origin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf("%s/index.html?scope=%s", origin, sc.ID)
	p := newBrowserPage(t, bin, page)
	for _, k := range []struct{ mode, want string }{
		{"keys", "the quote does not cover its keys"},
		{"replay", "not made for this page's challenge"},
		{"answer", "keymesh_initiateRegistration"},
	} {
		mu.Lock()
		mode, posts = k.mode, 0
		mu.Unlock()
		// A fresh page: no attestation kept from the previous case.
		if err := chromedp.Do(p.ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("register"))); err != nil {
			t.Fatal(err)
		}
		st, text := p.click("register")
		if st != "error" || !strings.Contains(text, k.want) {
			t.Fatalf("%s: the page says %s: %q (want an error naming %q)", k.mode, st, text, k.want)
		}
		mu.Lock()
		n := posts
		mu.Unlock()
		if k.mode != "answer" && n != 0 {
			t.Fatalf("%s: the page sent %d requests to the gateway after refusing the attestation", k.mode, n)
		}
		t.Logf("%s: %s", k.mode, text)
	}
}
