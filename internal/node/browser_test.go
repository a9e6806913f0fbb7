package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/auth/web"
	"github.com/keymesh/keymesh/internal/record"
)

// findChromium returns a Chromium binary: $KEYMESH_CHROMIUM, or Debian's
// chromium (scripts/setup-browser installs it), or "" when none exists.
func findChromium() string {
	for _, b := range []string{os.Getenv("KEYMESH_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if b == "" {
			continue
		}
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	return ""
}

// TestPasskeyBrowser drives real headless Chromium, with a CDP virtual
// WebAuthn authenticator (CTAP2, internal, resident keys, user
// verification), through the login bundle (package web) served by an app
// from its own origin, against a real 3-node cluster: the page posts its
// JSON-RPC calls to the node endpoint the bundle names (the app's /rpc,
// which the app forwards to node 0); it registers a passkey,
// authenticates, obtains a session; then the session key (inside the
// browser) approves an operation that every node authorises. The scope
// lists the app's origin only. The node's own development page (/login)
// is checked to load under its CSP.
func TestPasskeyBrowser(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no Chromium found: run scripts/setup-browser (apt-get install -y chromium) or set KEYMESH_CHROMIUM")
	}
	tc := newTestCluster(t)
	ctx := context.Background()
	u, err := url.Parse(tc.nodes[0].APIURL())
	if err != nil {
		t.Fatal(err)
	}
	// The app: serves the bundle under its CSP, and forwards POST /rpc to
	// node 0's JSON-RPC endpoint. WebAuthn needs a domain RP id: the page
	// is loaded from localhost.
	appMux := http.NewServeMux()
	app := httptest.NewServer(appMux)
	defer app.Close()
	au, err := url.Parse(app.URL)
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://localhost:" + au.Port()
	bundle := t.TempDir()
	if err := web.WriteBundle(bundle, origin+"/rpc"); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(bundle))
	appMux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", web.CSP)
		files.ServeHTTP(w, r)
	}))
	proxy := httputil.NewSingleHostReverseProxy(u)
	appMux.Handle("POST /rpc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/"
		proxy.ServeHTTP(w, r)
	}))
	dev, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := tc.clients[0].CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{origin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

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
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// The node's development page loads, styled, under its CSP.
	bodyFont := chromedp.Evaluate[string](`getComputedStyle(document.body).fontFamily`)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(fmt.Sprintf("http://localhost:%s/login?scope=%s", u.Port(), sc.ID)),
		chromedp.WaitVisible(chromedp.ID("register")),
	); err != nil {
		t.Fatalf("browser: node's /login: %v", err)
	}
	if font, err := chromedp.Run(bctx, bodyFont); err != nil || !strings.Contains(font, "system-ui") {
		t.Fatalf("node's /login: login.css not applied (font %q, %v)", font, err)
	}

	page := fmt.Sprintf("%s/index.html?scope=%s", origin, sc.ID)
	if err := chromedp.Do(bctx,
		virtualAuthenticator,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("register")),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if font, err := chromedp.Run(bctx, bodyFont); err != nil || !strings.Contains(font, "system-ui") {
		t.Fatalf("app's bundle: login.css not applied (font %q, %v)", font, err)
	}

	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("browser: %s: %v", expr, err)
		}
		return v
	}
	step := func(button, attr string) string {
		t.Helper()
		if err := chromedp.Do(bctx,
			chromedp.Click(chromedp.ID(button)),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Poll[bool](`["ok", "error"].includes(document.getElementById("status").dataset.state)`, chromedp.WithPollingTimeout(60*time.Second))(ctx, tg)
				return err
			}),
		); err != nil {
			t.Fatalf("browser: %s: %v", button, err)
		}
		if st := eval(`document.getElementById("status").dataset.state`); st != "ok" {
			t.Fatalf("%s: page says %q", button, eval(`document.getElementById("status").textContent`))
		}
		return eval(`document.body.dataset.` + attr + ` || ""`)
	}
	// The page registers its registration key's account id
	// (record.DerivedAccountID) and fills it in for the sign-in.
	alice := step("register", "registered")
	if !record.IsDerivedAccountID(alice) || eval(`document.getElementById("account").value`) != alice {
		t.Fatalf("registered %q", alice)
	}
	creds, err := tc.nodes[0].Auth().State().Credentials(ctx, sc.ID, alice)
	if err != nil || len(creds) != 1 || creds[0].Kind != record.CredPasskey {
		t.Fatalf("stored credentials: %v %v", creds, err)
	}
	sessRec := step("login", "session")
	if sessRec == "" {
		t.Fatal("no session record")
	}

	// The session key in the browser approves an operation; the node
	// authorises it.
	op := auth.Operation{Scope: sc.ID, Account: alice, Method: "personal_sign"}
	rand.Read(op.Hash[:])
	rand.Read(op.Request[:])
	a := &record.Approval{Scope: sc.ID, Account: alice, Method: op.Method, Hash: op.Hash, Expiry: time.Now().Add(time.Minute).Unix()}
	rand.Read(a.Nonce[:])
	sig := eval(`keymeshSign("` + base64.RawURLEncoding.EncodeToString(a.SigningMessage()) + `")`)
	h := client.Proofs(client.Proof{Approval: base64.RawURLEncoding.EncodeToString(a.Marshal()), Session: sessRec, Sig: sig})
	// Every node (records replicated) authorises it itself.
	for _, n := range tc.nodes {
		eventually(t, "account on every node", func() error { return hasAccount(n, sc.ID, alice) })
		pr, err := n.Auth().Authorize(ctx, op, h)
		if err != nil {
			t.Fatalf("node %d: Authorize with the browser's session: %v", n.ID(), err)
		}
		if pr.Account != alice || !strings.EqualFold(pr.Scope, sc.ID) {
			t.Fatalf("principal %+v", pr)
		}
	}

	// Per-operation mode: the passkey itself approves one operation (the
	// assertion's challenge commits to the approval).
	op2 := auth.Operation{Scope: sc.ID, Account: alice, Method: "eth_signTransaction"}
	rand.Read(op2.Hash[:])
	rand.Read(op2.Request[:])
	a2 := &record.Approval{Scope: sc.ID, Account: alice, Method: op2.Method, Hash: op2.Hash, Expiry: time.Now().Add(time.Minute).Unix()}
	rand.Read(a2.Nonce[:])
	credID := base64.RawURLEncoding.EncodeToString(creds[0].ID)
	assertion := eval(fmt.Sprintf(`keymeshPasskeyApprove(%q, "localhost", [%q])`, base64.RawURLEncoding.EncodeToString(a2.Challenge()), credID))
	h2 := client.Proofs(client.Proof{Approval: base64.RawURLEncoding.EncodeToString(a2.Marshal()), Passkey: json.RawMessage(assertion)})
	if _, err := tc.nodes[1].Auth().Authorize(ctx, op2, h2); err != nil {
		t.Fatalf("Authorize with a per-operation passkey assertion: %v", err)
	}
	// The same assertion does not approve another operation.
	op3 := op2
	op3.Hash[0] ^= 1
	if _, err := tc.nodes[1].Auth().Authorize(ctx, op3, h2); apiCode(err) != api.CodeAuthWrongOperation {
		t.Fatalf("assertion for another operation: %v", err)
	}
}

// virtualAuthenticator gives the page's browser a platform passkey
// authenticator (CDP WebAuthn domain) that verifies the user and is
// always present: the real WebAuthn code paths, without a person.
var virtualAuthenticator = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		return err
	}
	_, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true,
		AutomaticPresenceSimulation: true,
	}})
	return err
})
