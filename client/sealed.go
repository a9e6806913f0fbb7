package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
)

// Attestation says how the client checks a node's enclave before it seals
// anything to it (docs/enclave.md). With WithAttestation the client fetches
// GET /attestation once, verifies the quote and the measurement, and then
// seals every call to the attested keys; the node's answers are sealed back.
type Attestation struct {
	// Measurements pinned (hex, 64 digits each): the node must run one of
	// these builds. If empty, TrustOnFirstUse decides.
	Measurements []string
	// TrustOnFirstUse accepts the measurement the node reports when none is
	// pinned, with a warning (Warn); pin Client.Attested().Measurement
	// afterwards.
	TrustOnFirstUse bool
	// AllowSimulated accepts the sim enclave backend's quotes, which prove
	// nothing about hardware (development clusters).
	AllowSimulated bool
	// SimPlatformKeys are the trust roots for the sim backend's quotes (hex
	// Ed25519 public keys): the cluster's platform key, which `keymesh
	// cluster init` prints and writes to sim-platform-key in the cluster
	// directory (keymesh dev: in its --dir). A sim quote is accepted only if
	// one of them signed it, so a client that allows simulated quotes must
	// set it; the key a quote names itself is never trusted.
	SimPlatformKeys []string
	// MinKEM is the weakest KEM accepted for the node's request key:
	// "x-wing" (the default when empty: ML-KEM-768 + X25519) or "x25519",
	// which also accepts X25519. A node offering less is refused.
	MinKEM string
	// NodeIdentity is the Ed25519 identity key of the node this client
	// talks to, as the cluster config's identity_key (base64) or in hex
	// (`keymesh cluster init` prints it per node): an attestation of
	// another node is refused. If empty, the identity of the first
	// attestation this client verified is pinned for its later ones.
	NodeIdentity string
	// Compat seals in Passport's compatibility format (RSA-OAEP + AES-GCM
	// fields) instead of HPKE.
	Compat bool
	// Warn receives the verification's warnings (simulated platform, trust
	// on first use) as they happen. The SDK never logs: with Warn nil they
	// are only in Attested.Warnings (and Attested.FirstUse), for the caller
	// to show.
	Warn func(msg string)
	// Pins keeps the node's verified measurement, identity and roots
	// between runs (KnownNodes is a file-backed one): used when
	// Measurements is empty; a changed measurement is then refused with a
	// *PinChangedError unless Release authorises it (client/pins.go).
	Pins PinStore
	// Release accepts builds approved by t of the cluster's nodes
	// (`keymesh enclave approve-release`), besides the pinned ones.
	Release *ReleaseTrust
}

// Attested is what the client verified about the node.
type Attested struct {
	Platform     string
	Measurement  string // hex
	NodeIdentity string // base64, as in the cluster config
	Simulated    bool
	FirstUse     bool // accepted by trust on first use: pin Measurement
	Issued       time.Time
	Expires      time.Time // the client attests again before sealing after it
	Warnings     []string
}

// WithAttestation makes the client verify the node's attestation with a and
// seal every call. Without it the client speaks plaintext JSON-RPC, which
// only development nodes (AllowPlaintext) accept.
func WithAttestation(a Attestation) Option {
	return func(c *Client) { c.seal = &sealer{cfg: a} }
}

type ctxKeyScope struct{}

// WithScope returns ctx naming the scope id that sealed calls made with it
// are bound to (the envelope's authenticated header).
func WithScope(ctx context.Context, scope string) context.Context {
	return context.WithValue(ctx, ctxKeyScope{}, scope)
}

func scopeFrom(ctx context.Context) string {
	v, _ := ctx.Value(ctxKeyScope{}).(string)
	return v
}

// sealer holds the verified attestation of the client's node.
type sealer struct {
	cfg Attestation

	mu       sync.Mutex
	result   *attest.Result
	attested *Attested
	// tofu is the measurement accepted on first use: a later attestation
	// of this client (Attest) must report it again.
	tofu *enclave.Measurement
	// identity is the node's identity key: from the configuration, or from
	// the first attestation; every later one must attest it again.
	identity ed25519.PublicKey
	// offset is the node's clock minus ours, measured at the last
	// attestation: requests are sealed with the node's time.
	offset time.Duration
}

// refreshBefore is how long before an attestation's expiry the client
// attests again.
const refreshBefore = 30 * time.Second

// Attest fetches and verifies the node's attestation now (it is otherwise
// done before the first call, and again before a call once the previous one
// is about to expire) and returns what was verified. The client sends a
// fresh random challenge, and accepts only a document made for it. A node
// that reports a measurement other than the pinned ones is refused with an
// error naming both; with trust on first use, the measurement first
// accepted by this client stays pinned, and so does the node's identity
// key.
func (c *Client) Attest(ctx context.Context) (*Attested, error) {
	if c.seal == nil {
		return nil, errors.New("client: no attestation policy (use WithAttestation)")
	}
	c.seal.mu.Lock()
	defer c.seal.mu.Unlock()
	c.seal.result = nil
	if _, err := c.attestLocked(ctx); err != nil {
		return nil, err
	}
	a := *c.seal.attested
	return &a, nil
}

// Attested returns what the client verified, or nil before the first
// verification.
func (c *Client) Attested() *Attested {
	if c.seal == nil {
		return nil
	}
	c.seal.mu.Lock()
	defer c.seal.mu.Unlock()
	if c.seal.attested == nil {
		return nil
	}
	a := *c.seal.attested
	return &a
}

func (c *Client) attested(ctx context.Context) (*attest.Result, error) {
	c.seal.mu.Lock()
	defer c.seal.mu.Unlock()
	return c.attestLocked(ctx)
}

func (c *Client) attestLocked(ctx context.Context) (*attest.Result, error) {
	s := c.seal
	if s.result != nil && time.Now().Before(s.result.Fresh.Expires.Add(-refreshBefore)) {
		return s.result, nil
	}
	s.result = nil
	p, err := s.cfg.policy()
	if err != nil {
		return nil, err
	}
	pin, releaseErr, err := s.pinPolicy(c.url, &p)
	if err != nil {
		return nil, err
	}
	if len(p.Measurements) == 0 && s.tofu != nil {
		p.Measurements, p.TrustOnFirstUse = []enclave.Measurement{*s.tofu}, false
	}
	if p.NodeIdentity == nil {
		p.NodeIdentity = s.identity
	}
	p.Challenge = make([]byte, 32)
	if _, err := rand.Read(p.Challenge); err != nil {
		return nil, fmt.Errorf("client: attestation challenge: %w", err)
	}
	sent := time.Now()
	doc, err := FetchAttestationFor(ctx, c.hc, c.url, p.Challenge)
	if err != nil {
		return nil, err
	}
	received := time.Now()
	p.Now = received
	res, err := attest.Verify(doc, p)
	if err := s.pinResult(c.url, pin, releaseErr, &p, res, err); err != nil {
		return nil, fmt.Errorf("client: node %s refused: %w", c.url, err)
	}
	// The document was made between sent and received (it answers our
	// challenge), so its issue time gives the node's clock to within
	// half the round trip.
	s.offset = res.Fresh.Issued.Sub(sent.Add(received.Sub(sent) / 2))
	s.identity = ed25519.PublicKey(res.Keys.Identity)
	if warn := s.cfg.Warn; warn != nil {
		for _, w := range res.Warnings {
			warn(fmt.Sprintf("node %s: %s", c.url, w))
		}
	}
	s.result = res
	if res.FirstUse {
		m := res.Measurement
		s.tofu = &m
	}
	s.attested = &Attested{Platform: res.Platform, Measurement: res.Measurement.String(),
		NodeIdentity: base64.StdEncoding.EncodeToString(res.Keys.Identity),
		Simulated:    res.Simulated, FirstUse: res.FirstUse, Issued: res.Fresh.Issued, Expires: res.Fresh.Expires,
		Warnings: res.Warnings}
	return res, nil
}

// nodeNow is the node's clock as the client knows it from its last
// attestation.
func (c *Client) nodeNow() time.Time {
	c.seal.mu.Lock()
	defer c.seal.mu.Unlock()
	return time.Now().Add(c.seal.offset)
}

// ParseNodeIdentity decodes a node's identity key as the cluster config
// holds it (base64 of 32 bytes) or in hex (64 digits).
func ParseNodeIdentity(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(s) != 2*ed25519.PublicKeySize {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("client: node identity %q: want the node's Ed25519 identity key, base64 (as in the cluster config) or hex", s)
	}
	return ed25519.PublicKey(b), nil
}

// policy is the attest.Policy of a.
func (a *Attestation) policy() (attest.Policy, error) {
	p := attest.Policy{TrustOnFirstUse: a.TrustOnFirstUse, AllowSimulated: a.AllowSimulated}
	for _, h := range a.Measurements {
		m, err := enclave.ParseMeasurement(h)
		if err != nil {
			return p, fmt.Errorf("client: pinned measurement %q: %w", h, err)
		}
		p.Measurements = append(p.Measurements, m)
	}
	for _, h := range a.SimPlatformKeys {
		k, err := attest.ParseSimPlatformKey(h)
		if err != nil {
			return p, fmt.Errorf("client: sim platform key %q: %w", h, err)
		}
		p.SimPlatformKeys = append(p.SimPlatformKeys, k)
	}
	if a.NodeIdentity != "" {
		k, err := ParseNodeIdentity(a.NodeIdentity)
		if err != nil {
			return p, err
		}
		p.NodeIdentity = k
	}
	switch a.MinKEM {
	case "", "x-wing":
		p.MinKEM = envelope.KEMXWing
	case "x25519":
		p.MinKEM = envelope.KEMX25519
	default:
		return p, fmt.Errorf("client: MinKEM %q: want \"x-wing\" or \"x25519\"", a.MinKEM)
	}
	return p, nil
}

// FetchAttestation fetches GET /attestation from the node at baseURL: the
// node's shared document, not made for any challenge. The document is not
// verified (WithAttestation does that for a client's own calls).
func FetchAttestation(ctx context.Context, hc *http.Client, baseURL string) (*api.AttestationDocument, error) {
	return FetchAttestationFor(ctx, hc, baseURL, nil)
}

// FetchAttestationFor fetches GET /attestation?challenge=HEX: a document the
// node quotes for challenge (16 to 64 random bytes; nil for the shared
// document). Verify it with a policy whose challenge is challenge (as
// WithAttestation does), so that a recorded document cannot be replayed.
func FetchAttestationFor(ctx context.Context, hc *http.Client, baseURL string, challenge []byte) (*api.AttestationDocument, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimSuffix(baseURL, "/") + "/attestation"
	if challenge != nil {
		u += "?challenge=" + hex.EncodeToString(challenge)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: attestation: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: attestation: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: attestation: HTTP %d", resp.StatusCode)
	}
	var doc api.AttestationDocument
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("client: attestation: %w", err)
	}
	return &doc, nil
}

// ErrUnauthenticated is wrapped by the error of a sealed call whose answer
// is not authenticated by the node's enclave: it is not sealed to the
// request, or its HTTP status differs from the one sealed inside. Anyone on
// the path can write such an answer, so nothing in it is used; the call may
// or may not have run on the node.
var ErrUnauthenticated = errors.New("client: unauthenticated answer to a sealed call (possible attack)")

// UnauthenticatedError is the error of a sealed call whose answer is not
// authenticated (it wraps ErrUnauthenticated). The client never acts on such
// an answer: it does not attest again or resend (a resent call could run
// twice), and it does not show the answer's text (anyone could have written
// it). A node that lost or changed its keys answers this way too
// (ClaimedCode api.CodeSealedUnknownKey): verify its attestation again with
// Client.Attest, then retry only a call that is safe to run twice.
type UnauthenticatedError struct {
	Method string
	// HTTPStatus is the status that arrived (unauthenticated).
	HTTPStatus int
	// SealedStatus, if not 0, is the status the node sealed in its answer,
	// which differs from HTTPStatus: the status was changed on the path.
	SealedStatus int
	// ClaimedCode is the JSON-RPC error code an unsealed answer claims, or
	// 0; it is unauthenticated.
	ClaimedCode int
}

func (e *UnauthenticatedError) Error() string {
	if e.SealedStatus != 0 {
		return fmt.Sprintf("client: %s: the HTTP status was changed on the path (the node sealed %d, %d arrived): possible attack; the answer was not used",
			e.Method, e.SealedStatus, e.HTTPStatus)
	}
	msg := fmt.Sprintf("client: %s: the answer (HTTP %d) is not sealed to this request, so anyone on the path could have written it: possible attack; it was not used, and the call may or may not have run on the node",
		e.Method, e.HTTPStatus)
	if d, ok := sealedCodes[e.ClaimedCode]; ok {
		msg += fmt.Sprintf(" (it claims error %d: %s)", e.ClaimedCode, d)
	} else if e.ClaimedCode != 0 {
		msg += fmt.Sprintf(" (it claims error %d)", e.ClaimedCode)
	}
	if e.ClaimedCode == api.CodeSealedUnknownKey {
		msg += "; if the node's keys changed, verify its attestation again (Client.Attest) and retry only a call that is safe to run twice"
	}
	return msg
}

// Unwrap returns ErrUnauthenticated.
func (e *UnauthenticatedError) Unwrap() error { return ErrUnauthenticated }

// sealedCodes are our own descriptions of the codes a node uses to refuse a
// request it could not open; an unsealed answer's own text is never shown.
var sealedCodes = map[int]string{
	api.CodeSealedMalformed:  "malformed envelope",
	api.CodeSealedUnknownKey: "sealed to a key the node does not hold",
	api.CodeSealedHeader:     "authenticated header does not verify",
	api.CodeSealedCiphertext: "ciphertext does not authenticate",
	api.CodeSealedExpired:    "timestamp outside the node's window (check the clocks)",
	api.CodeSealedReplay:     "replayed request",
	api.CodeSealedBinding:    "sealed for another method or scope",
	api.CodePlaintextRefused: "plaintext refused",
}

// sealedRoundTrip sends the JSON-RPC body sealed and returns the opened
// JSON-RPC response and the HTTP status sealed with it. An answer that does
// not open, or whose HTTP status differs from the sealed one, is an
// *UnauthenticatedError: nothing in it is used.
func (c *Client) sealedRoundTrip(ctx context.Context, method string, body []byte) ([]byte, int, error) {
	res, err := c.attested(ctx)
	if err != nil {
		return nil, 0, err
	}
	call := api.SealedCall{RPC: body, Auth: proofsFrom(ctx)}
	// The node's identity goes in the authenticated header: another node
	// refuses the request.
	node, err := envelope.NodeIDFromKey(res.Keys.Identity)
	if err != nil {
		return nil, 0, fmt.Errorf("client: %s: the node's attestation names no identity key: %w", method, err)
	}
	var (
		hreq *http.Request
		open func(ct string, data []byte) (int, []byte, error)
	)
	if c.seal.cfg.Compat {
		pub, err := res.Keys.RSAPublicKey()
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		fields := map[string][]byte{api.CompatFieldRPC: body}
		if call.Auth != "" {
			fields[api.CompatFieldAuth] = []byte(call.Auth)
		}
		ek, sealed, pending, err := envelope.SealCompat(pub, envelope.CompatRequest{
			Node: node, Method: api.SealedMethod(body), Scope: scopeFrom(ctx), Fields: fields}, c.nodeNow())
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: sealing: %w", method, err)
		}
		b, _ := json.Marshal(sealed)
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(b)); err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set(envelope.HeaderEncryptedKey, ek)
		open = func(ct string, data []byte) (int, []byte, error) {
			var resp map[string]string
			if err := json.Unmarshal(data, &resp); err != nil {
				return 0, nil, err
			}
			if _, ok := resp[envelope.MetaField]; !ok {
				return 0, nil, errors.New("not a sealed response")
			}
			f, err := pending.OpenResponse(resp)
			if err != nil {
				return 0, nil, err
			}
			for name := range f {
				if name != api.CompatFieldRPC && name != api.CompatFieldStatus {
					return 0, nil, fmt.Errorf("unknown sealed field %q", name)
				}
			}
			st, err := api.ParseCompatStatus(f[api.CompatFieldStatus])
			if err != nil {
				return 0, nil, err
			}
			return st, f[api.CompatFieldRPC], nil
		}
	} else {
		pk, err := res.Keys.HPKEPublicKey()
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		inner, err := api.EncodeSealedCall(call)
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		env, pending, err := envelope.SealRequest(pk, envelope.Request{
			Node: node, Method: api.SealedMethod(body), Scope: scopeFrom(ctx), Body: inner}, c.nodeNow())
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: sealing: %w", method, err)
		}
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(env)); err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		hreq.Header.Set("Content-Type", envelope.ContentType)
		open = func(ct string, data []byte) (int, []byte, error) {
			if !strings.HasPrefix(ct, envelope.ContentType) {
				return 0, nil, errors.New("not a sealed response")
			}
			plain, err := pending.OpenResponse(data)
			if err != nil {
				return 0, nil, err
			}
			r, err := api.DecodeSealedReply(plain)
			if err != nil {
				return 0, nil, err
			}
			return r.Status, r.RPC, nil
		}
	}
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, 0, fmt.Errorf("client: %s: %w", method, err)
	}
	defer hresp.Body.Close()
	data, err := readLimited(hresp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("client: %s: %w", method, err)
	}
	status, rpc, err := open(hresp.Header.Get("Content-Type"), data)
	if err != nil {
		ue := &UnauthenticatedError{Method: method, HTTPStatus: hresp.StatusCode}
		var resp api.Response
		if json.Unmarshal(data, &resp) == nil && resp.Error != nil {
			ue.ClaimedCode = resp.Error.Code
		}
		return nil, 0, ue
	}
	if status != hresp.StatusCode {
		return nil, 0, &UnauthenticatedError{Method: method, HTTPStatus: hresp.StatusCode, SealedStatus: status}
	}
	return rpc, status, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	return data, nil
}
