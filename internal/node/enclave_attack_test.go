package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// Attacker tests of issue 14, findings 5 to 7, on real nodes that accept
// only sealed requests: a nonce store no one can fill, fresh attestations,
// and requests and attestations bound to one node.

// newSealedPair starts nodes 1 and 2 of one cluster, both sealed-only.
func newSealedPair(t *testing.T) (n1, n2 *sealedNode) {
	t.Helper()
	n1 = newSealedNode(t)
	n2 = &sealedNode{cfgs: n1.cfgs[1:]}
	n2.start(t)
	return n1, n2
}

func policyFor(s *sealedNode) attest.Policy {
	return attest.Policy{Measurements: []enclave.Measurement{s.n.Enclave().Measurement()}, AllowSimulated: true, SimPlatformKeys: simRoots(s.n)}
}

func attestationFor(s *sealedNode) client.Attestation {
	return client.Attestation{Measurements: []string{s.n.Enclave().Measurement().String()}, AllowSimulated: true,
		SimPlatformKeys: []string{simRoot(s.n)}, NodeIdentity: s.n.IdentityKey()}
}

// fromLoopback returns an HTTP client whose connections come from the
// loopback address ip (Linux routes all of 127/8 to lo).
func fromLoopback(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 30 * time.Second}
}

// sealRaw seals a keymesh_nodeInfo call for node id to pk, as an attacker
// or a client would, and returns the envelope and its pending state.
func sealRaw(t *testing.T, pk []byte, node []byte, at time.Time) ([]byte, *envelope.Pending) {
	t.Helper()
	k, err := envelope.ParsePublicKey(envelope.KEMXWing, pk)
	if err != nil {
		t.Fatal(err)
	}
	id, err := envelope.NodeIDFromKey(node)
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := httpapi.EncodeSealedCall(httpapi.SealedCall{RPC: json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`)})
	env, p, err := envelope.SealRequest(k, envelope.Request{Node: id, Method: "keymesh_nodeInfo", Body: inner}, at)
	if err != nil {
		t.Fatal(err)
	}
	return env, p
}

// postRaw posts a sealed envelope and returns the HTTP status, the body,
// and the JSON-RPC error code of an unsealed refusal (0 if sealed).
func postRaw(t *testing.T, hc *http.Client, url string, env []byte) (int, []byte, int) {
	t.Helper()
	resp, err := hc.Post(url+"/", envelope.ContentType, bytes.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == envelope.ContentType {
		return resp.StatusCode, data, 0
	}
	var r api.Response
	if err := json.Unmarshal(data, &r); err != nil || r.Error == nil {
		t.Fatalf("unsealed answer without an error: %s", data)
	}
	return resp.StatusCode, data, r.Error.Code
}

// TestSealedFloodNode (finding 5): an attacker at one address floods a
// node that has a small nonce store with valid sealed requests (anyone can
// seal to the node's public key). It gets sealed 429 refusals once over its
// share (api.CodeRateLimited with a retry hint), never an internal error, and a legitimate client at another
// address keeps working through the flood; a replay of its request is still
// refused.
func TestSealedFloodNode(t *testing.T) {
	testingOnlyNonceStore = func() *envelope.MemoryNonceStore {
		return &envelope.MemoryNonceStore{Max: 64, PerSource: 16}
	}
	t.Cleanup(func() { testingOnlyNonceStore = nil })
	s := newSealedNode(t)
	ctx := context.Background()
	attacker := fromLoopback("127.0.0.2")
	if _, err := attacker.Get(s.n.APIURL() + "/healthz"); err != nil {
		t.Skipf("cannot send from 127.0.0.2 (only 127.0.0.1 on loopback here?): %v", err)
	}
	doc, err := client.FetchAttestation(ctx, attacker, s.n.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	res, err := attest.Verify(doc, policyFor(s))
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for i := 0; i < 200; i++ {
		env, p := sealRaw(t, res.Keys.HPKE, res.Keys.Identity, time.Now())
		st, data, code := postRaw(t, attacker, s.n.APIURL(), env)
		if code != 0 {
			t.Fatalf("flood request %d: unsealed refusal %d (HTTP %d)", i, code, st)
		}
		if st == http.StatusOK {
			continue
		}
		plain, err := p.OpenResponse(data)
		if err != nil {
			t.Fatal(err)
		}
		reply, _ := httpapi.DecodeSealedReply(plain)
		var r api.Response
		json.Unmarshal(reply.RPC, &r)
		if st != http.StatusTooManyRequests || reply.Status != st || r.Error == nil || r.Error.Code != api.CodeRateLimited ||
			!strings.Contains(string(r.Error.Data), `"retryAfterMs"`) {
			t.Fatalf("flood request %d: HTTP %d, sealed %d %s", i, st, reply.Status, reply.RPC)
		}
		busy++
	}
	if busy != 200-16 {
		t.Fatalf("%d busy refusals, want %d", busy, 200-16)
	}
	a := attestationFor(s)
	a.Warn = func(string) {}
	user, err := client.New(s.n.APIURL(), client.WithAttestation(a), client.WithHTTPClient(fromLoopback("127.0.0.3")))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := user.NodeInfo(ctx); err != nil {
			t.Fatalf("legitimate call %d under the flood: %v", i, err)
		}
	}
	env, _ := sealRaw(t, res.Keys.HPKE, res.Keys.Identity, time.Now())
	if st, _, _ := postRaw(t, fromLoopback("127.0.0.3"), s.n.APIURL(), env); st != http.StatusOK {
		t.Fatalf("legitimate raw request: HTTP %d", st)
	}
	if _, _, code := postRaw(t, attacker, s.n.APIURL(), env); code != api.CodeSealedReplay {
		t.Fatalf("replay from the attacker's address: %d", code)
	}
}

// TestAttestationFreshness (finding 6): a recorded attestation replayed to
// a client is refused: the SDK's challenge does not match, and past its
// expiry it is refused whatever the challenge. A document made for the
// client's challenge is accepted.
func TestAttestationFreshness(t *testing.T) {
	s := newSealedNode(t)
	ctx := context.Background()
	challenge := make([]byte, 32)
	rand.Read(challenge)
	recorded, err := client.FetchAttestationFor(ctx, nil, s.n.APIURL(), challenge)
	if err != nil {
		t.Fatal(err)
	}
	p := policyFor(s)
	p.Challenge = challenge
	res, err := attest.Verify(recorded, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Fresh.Expires.Sub(res.Fresh.Issued); d != attest.DefaultValidity {
		t.Fatalf("validity %v", d)
	}
	p.Now = res.Fresh.Expires
	if _, err := attest.Verify(recorded, p); !errors.Is(err, attest.ErrStale) {
		t.Fatalf("replayed past its expiry: %v", err)
	}
	// The shared document (no challenge) expires too.
	shared, _ := client.FetchAttestation(ctx, nil, s.n.APIURL())
	q := policyFor(s)
	q.Now = time.Now().Add(attest.DefaultValidity + time.Second)
	if _, err := attest.Verify(shared, q); !errors.Is(err, attest.ErrStale) {
		t.Fatalf("shared document past its expiry: %v", err)
	}

	// An on-path attacker answers GET /attestation with the recorded
	// document and passes everything else to the node.
	u, _ := url.Parse(s.n.APIURL())
	proxy := httputil.NewSingleHostReverseProxy(u)
	mitm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/attestation" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(recorded)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer mitm.Close()
	c := sealedClient(t, mitm.URL, attestationFor(s))
	if _, err := c.NodeInfo(ctx); !errors.Is(err, attest.ErrChallenge) {
		t.Fatalf("replayed attestation: %v", err)
	}
	// The node itself answers the SDK's challenge.
	c = sealedClient(t, s.n.APIURL(), attestationFor(s))
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if a := c.Attested(); a.Expires.Sub(a.Issued) != attest.DefaultValidity || a.NodeIdentity != s.n.IdentityKey() {
		t.Fatalf("attested %+v", a)
	}
	// keymesh_attestation takes a challenge too.
	var got attest.Document
	if err := c.Call(ctx, api.MethodAttestation, map[string]string{"challenge": "00112233445566778899aabbccddeeff"}, &got); err != nil {
		t.Fatal(err)
	}
	r := policyFor(s)
	r.Challenge = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	if _, err := attest.Verify(&got, r); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"zz", "0011"} {
		resp, err := http.Get(s.n.APIURL() + "/attestation?challenge=" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("challenge %q: HTTP %d", bad, resp.StatusCode)
		}
	}
	// One address may have 120 challenges a minute quoted; another is not
	// affected.
	hammer := fromLoopback("127.0.0.4")
	if _, err := hammer.Get(s.n.APIURL() + "/healthz"); err != nil {
		t.Skipf("cannot send from 127.0.0.4 (only 127.0.0.1 on loopback here?): %v", err)
	}
	limited := 0
	for i := 0; i < 130; i++ {
		ch := make([]byte, 16)
		rand.Read(ch)
		if _, err := client.FetchAttestationFor(ctx, hammer, s.n.APIURL(), ch); err != nil {
			limited++
		}
	}
	if limited != 10 {
		t.Fatalf("%d of 130 challenges from one address refused, want 10", limited)
	}
	if _, err := client.FetchAttestationFor(ctx, fromLoopback("127.0.0.5"), s.n.APIURL(), challenge); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// TestNodeBinding (finding 7): a client that expects node 1 refuses node
// 2's attestation (an attacker who sends node 1's traffic to node 2), and a
// request sealed for node 1 replayed to node 2 is refused, as is one sealed
// to node 2's own key but for node 1.
func TestNodeBinding(t *testing.T) {
	n1, n2 := newSealedPair(t)
	ctx := context.Background()
	a := attestationFor(n1)
	a.Measurements = nil
	a.TrustOnFirstUse = true // the same build: only the identity tells them apart
	a.Warn = func(string) {}
	c := sealedClient(t, n2.n.APIURL(), a)
	if _, err := c.NodeInfo(ctx); !errors.Is(err, attest.ErrWrongNode) {
		t.Fatalf("node 2's attestation accepted by a client of node 1: %v", err)
	}
	// Without a configured identity the SDK pins the first one it sees.
	a.NodeIdentity = ""
	c = sealedClient(t, n1.n.APIURL(), a)
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Attested().NodeIdentity != n1.n.IdentityKey() {
		t.Fatal("identity not reported")
	}

	doc1, _ := client.FetchAttestation(ctx, nil, n1.n.APIURL())
	res1, err := attest.Verify(doc1, policyFor(n1))
	if err != nil {
		t.Fatal(err)
	}
	doc2, _ := client.FetchAttestation(ctx, nil, n2.n.APIURL())
	res2, err := attest.Verify(doc2, policyFor(n2))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := sealRaw(t, res1.Keys.HPKE, res1.Keys.Identity, time.Now())
	if _, _, code := postRaw(t, http.DefaultClient, n2.n.APIURL(), env); code != api.CodeSealedUnknownKey {
		t.Fatalf("node 1's request replayed to node 2: %d", code)
	}
	forN1, _ := sealRaw(t, res2.Keys.HPKE, res1.Keys.Identity, time.Now())
	if _, _, code := postRaw(t, http.DefaultClient, n2.n.APIURL(), forN1); code != api.CodeSealedBinding {
		t.Fatalf("sealed to node 2's key for node 1: %d", code)
	}
	if st, _, code := postRaw(t, http.DefaultClient, n1.n.APIURL(), env); st != http.StatusOK || code != 0 {
		t.Fatalf("node 1 refused its own request: %d %d", st, code)
	}
	if base64.StdEncoding.EncodeToString(res1.Keys.Identity) != n1.n.IdentityKey() {
		t.Fatal("the attested identity is not the cluster config's")
	}
}

// TestRotateRequestKeys (finding 6): after `enclave rotate-keys` the node
// attests new request keys and refuses requests sealed to the old ones;
// its identity stays. A client that attested before gets an unauthenticated
// refusal (it may not act on it), attests again and goes on.
func TestRotateRequestKeys(t *testing.T) {
	s := newSealedNode(t)
	ctx := context.Background()
	// A fixed address in front of the node, which listens on a new port
	// after its restart.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse(s.n.APIURL())
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer front.Close()
	c := sealedClient(t, front.URL, attestationFor(s))
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatal(err)
	}
	doc, _ := client.FetchAttestation(ctx, nil, s.n.APIURL())
	old, err := attest.Verify(doc, policyFor(s))
	if err != nil {
		t.Fatal(err)
	}
	s.stop()
	rotated, err := RotateRequestKeys(ctx, s.cfgs[0])
	if err != nil || len(rotated) != 2 {
		t.Fatalf("rotated %v: %v", rotated, err)
	}
	s.start(t)
	doc, _ = client.FetchAttestation(ctx, nil, s.n.APIURL())
	cur, err := attest.Verify(doc, policyFor(s))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cur.Keys.HPKE, old.Keys.HPKE) || bytes.Equal(cur.Keys.RSA, old.Keys.RSA) || !bytes.Equal(cur.Keys.Identity, old.Keys.Identity) {
		t.Fatal("rotation must change the request keys and keep the identity")
	}
	env, _ := sealRaw(t, old.Keys.HPKE, old.Keys.Identity, time.Now())
	if _, _, code := postRaw(t, http.DefaultClient, s.n.APIURL(), env); code != api.CodeSealedUnknownKey {
		t.Fatalf("request sealed to the old key: %d", code)
	}
	_, err = c.NodeInfo(ctx)
	var ue *client.UnauthenticatedError
	if !errors.As(err, &ue) || ue.ClaimedCode != api.CodeSealedUnknownKey {
		t.Fatalf("client with the old attestation: %v", err)
	}
	if _, err := c.Attest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NodeInfo(ctx); err != nil {
		t.Fatalf("after attesting again: %v", err)
	}
}
