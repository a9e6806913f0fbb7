// Package client is the Go SDK for a keymesh node's JSON-RPC 2.0 API (see
// package api for the wire contract).
//
//	c, err := client.New("http://127.0.0.1:7100")
//	info, err := c.NodeInfo(ctx)
//
// Errors the node returns are *api.Error values (wrapped with the method
// name), so a caller acts on the code with errors.As; transport failures
// and malformed responses are other errors.
//
// # API maturity
//
// Experimental. New, Call, NodeInfo and Ready keep their signatures; more
// typed methods (wallet, vault, uid…) will be added.
//
// # Sealed calls
//
// Production nodes accept only requests sealed to their attested enclave
// keys. WithAttestation makes the client fetch the node's attestation
// with a fresh challenge (and again before it expires), verify its quote
// against pinned roots and measurements (or trust on first use, with a
// warning) and the node's expected identity, and then seal every call for
// that node — HPKE by default, Passport's
// compatibility format on request — and open the sealed answers:
//
//	c, err := client.New(url, client.WithAttestation(client.Attestation{
//		Measurements:    []string{"9c…07"},
//		AllowSimulated:  true,              // sim backend (development) only
//		SimPlatformKeys: []string{"5e…a2"}, // its root: keymesh cluster init prints it
//		NodeIdentity:    "q3…Yw=",          // the node's identity_key in the cluster config
//	}))
//
// A sealed call's answer counts only if it is sealed to the request, with
// the HTTP status inside it: anything else is an *UnauthenticatedError
// (errors.Is ErrUnauthenticated), reported as a possible attack and never
// acted on — the client does not resend a call on an unauthenticated
// answer, so a call runs at most once.
//
// Without it the client speaks plaintext JSON-RPC, which only development
// nodes (keymesh dev, --allow-plaintext) accept. Approval proofs go with a
// call through its context (WithProofs), sealed with it when sealing.
//
// # Dependencies
//
// The SDK never logs (warnings go to Attestation.Warn and
// Attested.Warnings) and imports no server code: only package api (the
// wire definitions it shares with the node) and the pure libraries that
// build and check what goes on the wire (internal/record, internal/envelope,
// internal/attest and the enclave quote types it verifies). deps_test.go
// holds it to that.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keymesh/keymesh/api"
)

// maxResponse bounds the response bodies the client reads.
const maxResponse = 32 << 20

// Client talks to one node. It is safe for concurrent use.
type Client struct {
	url    string
	hc     *http.Client
	nextID atomic.Uint64
	seal   *sealer // nil: plaintext
	retry  RetryPolicy
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient makes the client send requests with hc (for TLS settings,
// proxies, or tests). The default is an http.Client with a 60 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// New returns a client for the node whose API base URL is rawURL (http or
// https, as in a cluster config's api_url).
func New(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: bad URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: bad URL %q: want http(s)://host[:port][/path]", rawURL)
	}
	c := &Client{url: strings.TrimSuffix(u.String(), "/"), hc: &http.Client{Timeout: 60 * time.Second}, retry: DefaultRetry}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Call invokes method with params (any value that marshals to a JSON object
// or array, or nil for none) and decodes the result into result (a pointer,
// or nil to discard it). An error from the node wraps an *api.Error. A call
// refused as busy or rate-limited is sent again after the node's hint
// (retry.go, WithRetry).
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.callRetrying(ctx, method, params, result)
}

// callOnce is one attempt of Call.
func (c *Client) callOnce(ctx context.Context, method string, params, result any) error {
	req := api.Request{JSONRPC: api.Version, Method: method}
	id := c.nextID.Add(1)
	req.ID = json.RawMessage(fmt.Sprint(id))
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("client: %s: params: %w", method, err)
		}
		req.Params = p
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("client: %s: %w", method, err)
	}
	var (
		data   []byte
		status int
	)
	if c.seal != nil {
		// One round trip, whatever comes back: an answer that is not sealed
		// (say, "unknown key") is an *UnauthenticatedError, and resending
		// could make the call run twice.
		data, status, err = c.sealedRoundTrip(ctx, method, body)
	} else {
		data, status, err = c.plainRoundTrip(ctx, method, body)
	}
	if err != nil {
		return err
	}
	var resp api.Response
	if err := json.Unmarshal(data, &resp); err != nil || resp.JSONRPC != api.Version {
		return fmt.Errorf("client: %s: HTTP %d with no JSON-RPC response", method, status)
	}
	if resp.Error != nil {
		// Errors about the body as a whole (413, parse errors) carry id null.
		return fmt.Errorf("client: %s: %w", method, resp.Error)
	}
	if string(resp.ID) != string(req.ID) {
		return fmt.Errorf("client: %s: response id %s does not match request id %s", method, resp.ID, req.ID)
	}
	if status != http.StatusOK {
		return fmt.Errorf("client: %s: HTTP %d", method, status)
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("client: %s: decoding result: %w", method, err)
		}
	}
	return nil
}

// plainRoundTrip posts a plaintext JSON-RPC body and returns the response
// body and HTTP status.
func (c *Client) plainRoundTrip(ctx context.Context, method string, body []byte) ([]byte, int, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("client: %s: %w", method, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if p := proofsFrom(ctx); p != "" {
		hreq.Header.Set(api.ProofsHeader, p)
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
	return data, hresp.StatusCode, nil
}

// NodeInfo calls keymesh_nodeInfo.
func (c *Client) NodeInfo(ctx context.Context) (*api.NodeInfo, error) {
	var info api.NodeInfo
	if err := c.Call(ctx, api.MethodNodeInfo, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Ready fetches GET /readyz. A node that answers 503 (not ready) is not an
// error: the status says so, with the peers that are down.
func (c *Client) Ready(ctx context.Context) (*api.ReadyStatus, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
	if err != nil {
		return nil, fmt.Errorf("client: readyz: %w", err)
	}
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("client: readyz: %w", err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK && hresp.StatusCode != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("client: readyz: HTTP %d", hresp.StatusCode)
	}
	var st api.ReadyStatus
	if err := json.NewDecoder(io.LimitReader(hresp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("client: readyz: %w", err)
	}
	if st.Ready != (hresp.StatusCode == http.StatusOK) {
		return nil, errors.New("client: readyz: status code and body disagree")
	}
	return &st, nil
}
