package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
	"github.com/keymesh/keymesh/internal/httpapi"
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
	// Compat seals in Passport's compatibility format (RSA-OAEP + AES-GCM
	// fields) instead of HPKE.
	Compat bool
	// Warn receives the verification's warnings (simulated platform, trust
	// on first use); nil logs them with the standard logger.
	Warn func(msg string)
}

// Attested is what the client verified about the node.
type Attested struct {
	Platform    string
	Measurement string // hex
	Simulated   bool
	FirstUse    bool // accepted by trust on first use: pin Measurement
	Warnings    []string
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
}

// Attest fetches and verifies the node's attestation now (it is otherwise
// done before the first call) and returns what was verified. A node that
// reports a measurement other than the pinned ones is refused with an error
// naming both.
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
	if s.result != nil {
		return s.result, nil
	}
	doc, err := FetchAttestation(ctx, c.hc, c.url)
	if err != nil {
		return nil, err
	}
	p := attest.Policy{TrustOnFirstUse: s.cfg.TrustOnFirstUse, AllowSimulated: s.cfg.AllowSimulated}
	for _, h := range s.cfg.Measurements {
		m, err := enclave.ParseMeasurement(h)
		if err != nil {
			return nil, fmt.Errorf("client: pinned measurement %q: %w", h, err)
		}
		p.Measurements = append(p.Measurements, m)
	}
	res, err := attest.Verify(doc, p)
	if err != nil {
		return nil, fmt.Errorf("client: node %s refused: %w", c.url, err)
	}
	warn := s.cfg.Warn
	if warn == nil {
		warn = func(msg string) { log.Printf("keymesh client: warning: %s", msg) }
	}
	for _, w := range res.Warnings {
		warn(fmt.Sprintf("node %s: %s", c.url, w))
	}
	s.result = res
	s.attested = &Attested{Platform: res.Platform, Measurement: res.Measurement.String(),
		Simulated: res.Simulated, FirstUse: res.FirstUse, Warnings: res.Warnings}
	return res, nil
}

// FetchAttestation fetches GET /attestation from the node at baseURL. The
// document is not verified: pass it to attest.Verify.
func FetchAttestation(ctx context.Context, hc *http.Client, baseURL string) (*attest.Document, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/attestation", nil)
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
	var doc attest.Document
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("client: attestation: %w", err)
	}
	return &doc, nil
}

// sealedRoundTrip sends the JSON-RPC body sealed and returns the opened
// response body. A plaintext answer is accepted only as a JSON-RPC error
// about the envelope (id null), which is what a node that could not open the
// request sends.
func (c *Client) sealedRoundTrip(ctx context.Context, method string, body []byte) ([]byte, int, error) {
	res, err := c.attested(ctx)
	if err != nil {
		return nil, 0, err
	}
	call := httpapi.SealedCall{RPC: body, Auth: proofsFrom(ctx)}
	var (
		hreq *http.Request
		open func(ct string, data []byte) ([]byte, error)
	)
	if c.seal.cfg.Compat {
		pub, err := res.Keys.RSAPublicKey()
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		fields := map[string][]byte{httpapi.CompatFieldRPC: body}
		if call.Auth != "" {
			fields[httpapi.CompatFieldAuth] = []byte(call.Auth)
		}
		ek, sealed, pending, err := envelope.SealCompat(pub, envelope.CompatRequest{
			Method: httpapi.SealedMethod(body), Scope: scopeFrom(ctx), Fields: fields}, time.Now())
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: sealing: %w", method, err)
		}
		b, _ := json.Marshal(sealed)
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(b)); err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set(envelope.HeaderEncryptedKey, ek)
		open = func(ct string, data []byte) ([]byte, error) {
			var resp map[string]string
			if err := json.Unmarshal(data, &resp); err != nil {
				return nil, err
			}
			if _, ok := resp[envelope.MetaField]; !ok {
				return nil, errors.New("not a sealed response")
			}
			f, err := pending.OpenResponse(resp)
			if err != nil {
				return nil, err
			}
			return f[httpapi.CompatFieldRPC], nil
		}
	} else {
		pk, err := res.Keys.HPKEPublicKey()
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		inner, err := httpapi.EncodeSealedCall(call)
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		env, pending, err := envelope.SealRequest(pk, envelope.Request{
			Method: httpapi.SealedMethod(body), Scope: scopeFrom(ctx), Body: inner}, time.Now())
		if err != nil {
			return nil, 0, fmt.Errorf("client: %s: sealing: %w", method, err)
		}
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(env)); err != nil {
			return nil, 0, fmt.Errorf("client: %s: %w", method, err)
		}
		hreq.Header.Set("Content-Type", envelope.ContentType)
		open = func(ct string, data []byte) ([]byte, error) {
			if !strings.HasPrefix(ct, envelope.ContentType) {
				return nil, errors.New("not a sealed response")
			}
			return pending.OpenResponse(data)
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
	plain, err := open(hresp.Header.Get("Content-Type"), data)
	if err == nil {
		return plain, hresp.StatusCode, nil
	}
	// The node could not open the request: a plaintext JSON-RPC error.
	var resp api.Response
	if json.Unmarshal(data, &resp) == nil && resp.Error != nil && (resp.ID == nil || string(resp.ID) == "null") {
		return data, hresp.StatusCode, nil
	}
	return nil, 0, fmt.Errorf("client: %s: HTTP %d: the response is not sealed to this request: %w", method, hresp.StatusCode, err)
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
