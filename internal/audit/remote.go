package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Heads over the network (issue 16: "keymesh audit verify checks a chain
// against the heads its peers hold"). Every node serves, on its public API,
// the heads it holds from each of its peers (HeadsHandler), with the
// identity key it pins for that peer; FetchHeads reads them. A verifier
// asks every peer of the node whose chain it checks, verifies each head's
// signature with the key the peers pin (not one the checked node names
// itself: its own store may have been rewritten to name another), and
// hands the heads to Verify.
//
// What this reveals to anyone who asks: for each node, the sequence
// numbers, hashes and signing times of its chain's heads — how many
// entries the node logged, and when it signed. No entry, and nothing an
// entry holds, is served. The heads are signed by the node they describe,
// so whoever relays them (a proxy, a malicious peer) can withhold them but
// not forge or alter them; a verifier that cannot reach a peer says so.

// HeadsPattern is the http.ServeMux pattern of HeadsHandler on a node's
// API: GET /audit/heads/{node}.
const HeadsPattern = "GET /audit/heads/{node}"

// maxHeldHeads bounds the heads a response may carry: HeadStore keeps at
// most keepLatest plus one per power-of-two band (64) per node.
const maxHeldHeads = keepLatest + 64

// HeldHeads is the body of a HeadsHandler response.
type HeldHeads struct {
	// Holder is the node that answered, Node the node whose heads these
	// are.
	Holder uint16 `json:"holder"`
	Node   uint16 `json:"node"`
	// IdentityKey is the Ed25519 public key (base64) the holder pins for
	// Node: the key it verified these heads with before keeping them.
	IdentityKey string     `json:"identityKey"`
	Heads       []HeadJSON `json:"heads"`
}

// HeadsHandler serves the heads hs holds from each peer of self, with the
// identity key pinned for it (pinned). A node that is not a peer is 404.
// Errors reading the store are logged by the caller's server, never sent:
// the client gets a fixed message.
func HeadsHandler(self uint16, hs *HeadStore, pinned map[uint16]ed25519.PublicKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("node"), 10, 16)
		key, ok := pinned[uint16(id)]
		if err != nil || !ok {
			http.Error(w, "audit: not a peer of this node", http.StatusNotFound)
			return
		}
		held, err := hs.Heads(r.Context(), uint16(id))
		if err != nil {
			http.Error(w, "audit: internal error", http.StatusInternalServerError)
			return
		}
		out := HeldHeads{Holder: self, Node: uint16(id), IdentityKey: base64.StdEncoding.EncodeToString(key), Heads: []HeadJSON{}}
		for _, h := range held {
			out.Heads = append(out.Heads, h.JSON())
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(out)
	})
}

// Fetched is what FetchHeads read from one holder.
type Fetched struct {
	Holder uint16
	// Key is the identity key the holder pins for the node.
	Key   ed25519.PublicKey
	Heads []*SignedHead
}

// FetchHeads asks the node whose API is at baseURL for the heads it holds
// from node. The answer is decoded strictly (unknown fields, a head of
// another node, more heads than a HeadStore keeps are errors); the heads'
// signatures are not checked here: Verify checks them with the key the
// caller decides to trust.
func FetchHeads(ctx context.Context, hc *http.Client, baseURL string, node uint16) (*Fetched, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimSuffix(baseURL, "/") + "/audit/heads/" + strconv.Itoa(int(node))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: heads from %s: %w", baseURL, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("audit: heads from %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("audit: heads from %s: %w", baseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("audit: heads from %s: HTTP %d: %s", baseURL, resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	return decodeHeld(body, node)
}

// decodeHeld decodes a HeldHeads body for node strictly.
func decodeHeld(body []byte, node uint16) (*Fetched, error) {
	var raw struct {
		Holder      uint16            `json:"holder"`
		Node        uint16            `json:"node"`
		IdentityKey string            `json:"identityKey"`
		Heads       []json.RawMessage `json:"heads"`
	}
	if err := strictJSON(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: held heads: %v", ErrMalformed, err)
	}
	key, err := base64.StdEncoding.DecodeString(raw.IdentityKey)
	switch {
	case err != nil || len(key) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: held heads: identityKey must be base64 of 32 bytes", ErrMalformed)
	case raw.Node != node || raw.Holder == node:
		return nil, fmt.Errorf("%w: held heads: asked for node %d's heads, got node %d's from node %d", ErrMalformed, node, raw.Node, raw.Holder)
	case len(raw.Heads) > maxHeldHeads:
		return nil, fmt.Errorf("%w: held heads: %d heads, a holder keeps at most %d", ErrMalformed, len(raw.Heads), maxHeldHeads)
	}
	f := &Fetched{Holder: raw.Holder, Key: key}
	for i, b := range raw.Heads {
		sh, err := ParseHeadJSON(b)
		if err != nil {
			return nil, fmt.Errorf("held heads: head %d: %w", i, err)
		}
		if sh.Node != node {
			return nil, fmt.Errorf("%w: held heads: head %d is node %d's", ErrMalformed, i, sh.Node)
		}
		f.Heads = append(f.Heads, sh)
	}
	return f, nil
}

// ErrKeyDisagreement is wrapped by PinnedKey's error when holders pin
// different identity keys for one node.
var ErrKeyDisagreement = errors.New("audit: the holders pin different identity keys for the node")

// PinnedKey returns the one identity key every fetched holder pins for
// the node (and want, if not nil, must be it too).
func PinnedKey(fs []*Fetched, want ed25519.PublicKey) (ed25519.PublicKey, error) {
	key := want
	for _, f := range fs {
		if key == nil {
			key = f.Key
			continue
		}
		if !key.Equal(f.Key) {
			return nil, fmt.Errorf("%w: node %d pins %s, expected %s", ErrKeyDisagreement, f.Holder,
				base64.StdEncoding.EncodeToString(f.Key), base64.StdEncoding.EncodeToString(key))
		}
	}
	if key == nil {
		return nil, errors.New("audit: no holder answered and no identity key was given")
	}
	return key, nil
}
