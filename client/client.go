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
// typed methods (wallet, vault, uid…) will be added. Sealed request bodies
// (HPKE to an attested node key) are not implemented yet: the client speaks
// plain JSON-RPC, so use it only over a trusted network or HTTPS until then.
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
	c := &Client{url: strings.TrimSuffix(u.String(), "/"), hc: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Call invokes method with params (any value that marshals to a JSON object
// or array, or nil for none) and decodes the result into result (a pointer,
// or nil to discard it). An error from the node wraps an *api.Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
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
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: %s: %w", method, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("client: %s: %w", method, err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("client: %s: reading response: %w", method, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("client: %s: response larger than %d bytes", method, maxResponse)
	}
	var resp api.Response
	if err := json.Unmarshal(data, &resp); err != nil || resp.JSONRPC != api.Version {
		return fmt.Errorf("client: %s: HTTP %d with no JSON-RPC response", method, hresp.StatusCode)
	}
	if resp.Error != nil {
		// Errors about the body as a whole (413, parse errors) carry id null.
		return fmt.Errorf("client: %s: %w", method, resp.Error)
	}
	if string(resp.ID) != string(req.ID) {
		return fmt.Errorf("client: %s: response id %s does not match request id %s", method, resp.ID, req.ID)
	}
	if hresp.StatusCode != http.StatusOK {
		return fmt.Errorf("client: %s: HTTP %d", method, hresp.StatusCode)
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("client: %s: decoding result: %w", method, err)
		}
	}
	return nil
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
