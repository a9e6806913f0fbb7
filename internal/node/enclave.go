package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/envelope"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/store"
)

// EnclaveSimDir is the directory, inside a node's data dir, of the
// simulated enclave platform (its quote key and seal secret; see
// docs/enclave.md). Real TEE backends keep nothing there.
const EnclaveSimDir = sim.DirName

// Where the node keeps its sealed envelope keys in its store.
const (
	enclaveNS      = "enclave"
	enclaveHPKEKey = "hpke"
	enclaveRSAKey  = "rsa"
)

// OpenEnclave opens the enclave backend of the node whose data dir is
// dataDir: the sim backend, measuring the running executable.
func OpenEnclave(dataDir string) (*sim.Backend, error) {
	b, err := sim.Open(sim.Config{Dir: filepath.Join(dataDir, EnclaveSimDir)})
	if err != nil {
		return nil, fmt.Errorf("node: enclave: %w", err)
	}
	return b, nil
}

// openEnclave opens n.enclave; it is the first thing a node does, since
// every secret at rest is sealed by it.
func (n *Node) openEnclave() error {
	b, err := OpenEnclave(n.cfg.DataDir)
	if err != nil {
		return err
	}
	if want := n.cfg.SimPlatformKey; want != "" {
		// Not fatal (the node's own secrets may still open), but the
		// cluster's clients pin want and will refuse this node's quotes.
		if got := hex.EncodeToString(b.PlatformKey()); got != want {
			n.log.Warn("the sim platform does not sign with the cluster's key (sim_platform_key in the config): clients will refuse this node's quotes; "+
				"copy the node's enclave-sim directory from where `keymesh cluster init` wrote it",
				"dir", filepath.Join(n.cfg.DataDir, EnclaveSimDir), "platform_key", got, "sim_platform_key", want)
		}
	}
	n.enclave = b
	n.log.Info("enclave opened", "platform", b.Platform(), "simulated", b.Simulated(), "measurement", b.Measurement().String())
	return nil
}

// closeEnclave clears the backend's secrets from memory.
func (n *Node) closeEnclave() {
	if c, ok := n.enclave.(interface{ Close() error }); ok {
		c.Close()
	}
	n.enclave = nil
}

// loadIdentity unseals the node's identity key (sealing and removing the
// plaintext key `cluster init` wrote, on first start). A key sealed by
// another build stops the node with a message that names both builds and
// the way out.
func (n *Node) loadIdentity() (*config.Identity, error) {
	label, err := identityLabel(n.cfg)
	if err != nil {
		return nil, err
	}
	id, migrated, err := config.LoadSealedIdentity(n.cfg.DataDir, n.enclave, label)
	if isUnsealRefusal(err) && n.enclave.Simulated() {
		// A sim data dir from before the roster binding: its identity is
		// sealed under the bare label. Bind it to this config's roster once.
		// Hardware backends have no such fallback (docs/enclave.md).
		if id, err = n.rebindLegacyIdentity(label); err == nil {
			return id, nil
		}
	}
	var me *enclave.MeasurementError
	switch {
	case isUnsealRefusal(err):
		return nil, errRosterChanged(n.cfg)
	case errors.As(err, &me):
		return nil, fmt.Errorf("node: refusing to start: the secrets in %s were sealed by another build of keymesh (measurement %s) and this binary's measurement is %s; "+
			"the binary changed: run `keymesh enclave migrate-in` with this binary and `keymesh enclave migrate-out` with the old one (docs/enclave.md, \"Upgrades\")",
			n.cfg.DataDir, me.SealedTo, me.Running)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("node: no identity key in %s (neither %s nor %s): create the cluster with `keymesh cluster init` and copy the node's data dir with its config",
			n.cfg.DataDir, config.SealedIdentityFile, config.IdentityFile)
	case err != nil:
		return nil, fmt.Errorf("node: %w", err)
	}
	if migrated {
		n.log.Info("identity key sealed to the enclave; plaintext key removed",
			"file", config.SealedIdentityFile, "measurement", n.enclave.Measurement().String())
	}
	return id, nil
}

// rebindLegacyIdentity opens an identity sealed under the bare
// enclave.LabelIdentity (sim data dirs from before the roster binding) and
// reseals it under label. It returns the unseal error of the bound label's
// attempt when the legacy label does not open it either.
func (n *Node) rebindLegacyIdentity(label string) (*config.Identity, error) {
	id, err := config.OpenIdentity(n.cfg.DataDir, n.enclave, enclave.LabelIdentity)
	if err != nil {
		return nil, fmt.Errorf("%w (nor under the pre-roster label)", enclave.ErrUnseal)
	}
	if err := config.ResealIdentity(n.cfg.DataDir, n.enclave, id, label); err != nil {
		id.Destroy()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.log.Info("identity key bound to the cluster roster of this config (sealed again under the roster label)", "file", config.SealedIdentityFile)
	return id, nil
}

// Enclave returns the node's enclave backend (sealing at rest, quotes).
func (n *Node) Enclave() enclave.Backend { return n.enclave }

// sealedKeys are the node's envelope keys, its attestation and its request
// openers, made on first use (an RSA-3072 key takes a moment to generate,
// and a dev node that only sees plaintext never needs them).
type sealedKeys struct {
	mu     sync.Mutex
	ready  bool
	keys   attest.Keys
	hpke   *envelope.Opener
	compat *envelope.CompatOpener

	// doc is the attestation without a challenge, made again when half its
	// validity has passed (attestation).
	docMu sync.Mutex
	doc   *attest.Document
	docAt time.Time

	challenges challengeQuotes
}

// sealed returns the node's envelope keys, loading or creating them.
func (n *Node) sealed(ctx context.Context) (*sealedKeys, error) {
	s := &n.sealedKeys
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return s, nil
	}
	load := func(key string) func() ([]byte, error) {
		return func() ([]byte, error) {
			b, err := n.store.Get(ctx, enclaveNS, key)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			return b, err
		}
	}
	save := func(key string) func([]byte) error {
		return func(b []byte) error { return n.store.Put(ctx, enclaveNS, key, b) }
	}
	kind, kem, hpkeKey := enclave.KeyHPKEXWing, envelope.KEMXWing, enclaveHPKEKey
	if n.cfg.RequestKEM == config.KEMX25519 {
		kind, kem, hpkeKey = enclave.KeyHPKEX25519, envelope.KEMX25519, enclaveHPKEKey+"-x25519"
	}
	hk, err := enclave.LoadOrCreateKey(n.enclave, kind, enclave.LabelHPKE, load(hpkeKey), save(hpkeKey))
	if err != nil {
		return nil, fmt.Errorf("node: HPKE request key: %w", err)
	}
	rk, err := enclave.LoadOrCreateKey(n.enclave, enclave.KeyRSA3072, enclave.LabelRSA, load(enclaveRSAKey), save(enclaveRSAKey))
	if err != nil {
		return nil, fmt.Errorf("node: RSA request key: %w", err)
	}
	hsk, err := hk.HPKE()
	if err != nil {
		return nil, fmt.Errorf("node: HPKE request key: %w", err)
	}
	rsk, err := rk.RSA()
	if err != nil {
		return nil, fmt.Errorf("node: RSA request key: %w", err)
	}
	s.keys = attest.Keys{
		HPKEKEM:  kem,
		HPKE:     hk.Public(),
		RSA:      rk.Public(),
		Identity: n.identityPub,
	}
	// One nonce store for both modes: a nonce is a nonce.
	nonces, err := loadNonces(ctx, n.store, testingOnlyNonceStore)
	if err != nil {
		return nil, err
	}
	// Both openers accept only requests sealed for this node's identity.
	nodeID, err := envelope.NodeIDFromKey(n.identityPub)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if s.hpke, err = envelope.NewOpener(nonces, 0, nil, hsk); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	s.hpke.BindNode(nodeID)
	if s.compat, err = envelope.NewCompatOpener(nonces, 0, nil, rsk); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	s.compat.BindNode(nodeID)
	s.ready = true
	if _, err := n.attestation(s, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// attestation returns a document for challenge: a fresh quote when a client
// sent one (so the client knows the document was made for it), otherwise
// the shared document, quoted again once half its validity has passed.
// Each is valid for attest.DefaultValidity.
func (n *Node) attestation(s *sealedKeys, challenge []byte) (*attest.Document, error) {
	now := time.Now()
	if challenge == nil {
		s.docMu.Lock()
		defer s.docMu.Unlock()
		if s.doc != nil && now.Sub(s.docAt) < attest.DefaultValidity/2 {
			return s.doc, nil
		}
	}
	doc, err := attest.New(n.enclave, s.keys, attest.Freshness{Issued: now, Expires: now.Add(attest.DefaultValidity), Challenge: challenge})
	if err != nil {
		return nil, fmt.Errorf("node: attestation: %w", err)
	}
	if challenge == nil {
		s.doc, s.docAt = doc, now
	}
	return doc, nil
}

// challengeQuotes limits the attestations a source may have quoted for its
// own challenges: each is a quote on the platform (on SEV-SNP or TDX a
// request to the security processor or quoting enclave, milliseconds), so
// one address must not keep the node busy making them. Fixed windows of a
// minute; the table is bounded, and sources beyond it are not limited
// (an attacker with that many addresses could only slow quoting, not
// lock others out of it).
type challengeQuotes struct {
	mu     sync.Mutex
	start  time.Time
	counts map[string]int
}

const (
	challengeQuotesPerMinute = 120
	challengeQuotesSources   = 1 << 16
)

// allow reports whether source may have one more challenge quoted now.
func (c *challengeQuotes) allow(source string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || now.Sub(c.start) >= time.Minute || now.Before(c.start) {
		c.start, c.counts = now, make(map[string]int)
	}
	n, ok := c.counts[source]
	if !ok && len(c.counts) >= challengeQuotesSources {
		return true
	}
	if n >= challengeQuotesPerMinute {
		return false
	}
	c.counts[source] = n + 1
	return true
}

// errTooManyChallenges refuses a source over challengeQuotesPerMinute.
var errTooManyChallenges = errors.New("too many attestation challenges from this address; retry in a minute")

// parseChallenge decodes a client's attestation challenge: hex, 16 to
// attest.MaxChallenge bytes; "" is none.
func parseChallenge(h string) ([]byte, error) {
	if h == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 16 || len(b) > attest.MaxChallenge {
		return nil, fmt.Errorf("challenge must be 16 to %d bytes in hex", attest.MaxChallenge)
	}
	return b, nil
}

// Attestation returns the node's attestation document (what GET
// /attestation serves) for challenge (nil: the shared one), creating its
// envelope keys on first use.
func (n *Node) Attestation(ctx context.Context, challenge []byte) (*attest.Document, error) {
	s, err := n.sealed(ctx)
	if err != nil {
		return nil, err
	}
	return n.attestation(s, challenge)
}

// attestationFor is Attestation for a request from source, limited per
// source when it carries a challenge (errTooManyChallenges).
func (n *Node) attestationFor(ctx context.Context, source string, challenge []byte) (*attest.Document, error) {
	if challenge != nil && !n.sealedKeys.challenges.allow(source, time.Now()) {
		return nil, errTooManyChallenges
	}
	return n.Attestation(ctx, challenge)
}

// openEnclaveAPI adds GET /attestation and keymesh_attestation, and returns
// the sealed-request settings for the API handler. A node that accepts only
// sealed requests loads (or makes) its request keys now, so that a broken
// key fails the start and the first client does not wait for an RSA key;
// a dev node makes them on first use.
func (n *Node) openEnclaveAPI(ctx context.Context, svc *services, allowPlaintext bool) (*httpapi.Sealing, error) {
	if !allowPlaintext {
		if _, err := n.sealed(ctx); err != nil {
			return nil, err
		}
	}
	svc.reg.Register(api.MethodAttestation, func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Challenge string `json:"challenge"`
		}
		if len(params) > 0 && string(params) != "null" && string(params) != "[]" {
			if err := httpapi.DecodeParams(params, &p); err != nil {
				return nil, err
			}
		}
		challenge, err := parseChallenge(p.Challenge)
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidParams, "%s", err.Error())
		}
		doc, err := n.attestationFor(ctx, envelope.Source(ctx), challenge)
		if errors.Is(err, errTooManyChallenges) {
			return nil, api.Errorf(api.CodeLimitExceeded, "%s", err.Error())
		}
		return doc, err
	})
	svc.route(httpapi.Route{Pattern: "GET /attestation", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge, err := parseChallenge(r.URL.Query().Get("challenge"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		doc, err := n.attestationFor(r.Context(), httpapi.SourceOf(r.RemoteAddr), challenge)
		if errors.Is(err, errTooManyChallenges) {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		if err != nil {
			n.log.Error("attestation", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		b, err := json.Marshal(doc)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(b, '\n'))
	})})
	return &httpapi.Sealing{
		AllowPlaintext: allowPlaintext,
		Openers: func(ctx context.Context) (*envelope.Opener, *envelope.CompatOpener, error) {
			s, err := n.sealed(ctx)
			if err != nil {
				return nil, nil, err
			}
			return s.hpke, s.compat, nil
		},
	}, nil
}

// nonceNS is the store namespace of accepted request nonces; keys are
// "<expiry unix ms, 16 hex digits>-<nonce hex>", so they sort by expiry.
const nonceNS = "enclave/nonce"

// pruneEvery is how many accepted nonces pass between two prunings of the
// expired ones from the store.
const pruneEvery = 1024

// storeNonces is the node's envelope.NonceStore: nonces are checked in
// memory (atomically) and also written to the store, and reloaded on start,
// so that a sealed request captured before a restart cannot be replayed
// after it while its timestamp is still in the window.
type storeNonces struct {
	mem   *envelope.MemoryNonceStore
	st    store.Store
	count atomic.Int64
}

func nonceKey(nonce []byte, expiry time.Time) string {
	return fmt.Sprintf("%016x-%x", expiry.UnixMilli(), nonce)
}

// testingOnlyNonceStore, if set, is the memory store nodes use (tests of a
// node with a small store).
var testingOnlyNonceStore func() *envelope.MemoryNonceStore

// loadNonces reloads the unexpired nonces from st and deletes the others.
// The memory store bounds each source's share and its own size
// (envelope.MemoryNonceStore), so nothing reaches the store for a source
// over its share.
func loadNonces(ctx context.Context, st store.Store, mem func() *envelope.MemoryNonceStore) (*storeNonces, error) {
	s := &storeNonces{mem: &envelope.MemoryNonceStore{}, st: st}
	if mem != nil {
		s.mem = mem()
	}
	entries, err := st.List(ctx, nonceNS, "", 0)
	if err != nil {
		return nil, fmt.Errorf("node: request nonces: %w", err)
	}
	now := time.Now()
	for _, e := range entries {
		ms, nonce, ok := strings.Cut(e.Key, "-")
		exp, err1 := strconv.ParseInt(ms, 16, 64)
		raw, err2 := hex.DecodeString(nonce)
		if !ok || err1 != nil || err2 != nil || !now.Before(time.UnixMilli(exp)) {
			if err := st.Delete(ctx, nonceNS, e.Key); err != nil {
				return nil, fmt.Errorf("node: request nonces: %w", err)
			}
			continue
		}
		s.mem.Restore(raw, time.UnixMilli(exp))
	}
	return s, nil
}

// Seen implements envelope.NonceStore.
func (s *storeNonces) Seen(ctx context.Context, nonce []byte, expiry time.Time) (bool, error) {
	seen, err := s.mem.Seen(ctx, nonce, expiry)
	if err != nil || seen {
		return seen, err
	}
	if err := s.st.Put(ctx, nonceNS, nonceKey(nonce, expiry), nil); err != nil {
		return false, fmt.Errorf("node: recording a request nonce: %w", err)
	}
	if s.count.Add(1)%pruneEvery == 0 {
		s.prune(ctx)
	}
	return false, nil
}

// prune deletes expired nonces from the store, oldest first.
func (s *storeNonces) prune(ctx context.Context) {
	now := time.Now()
	entries, err := s.st.List(ctx, nonceNS, "", pruneEvery)
	if err != nil {
		return
	}
	for _, e := range entries {
		ms, _, _ := strings.Cut(e.Key, "-")
		if exp, err := strconv.ParseInt(ms, 16, 64); err == nil && now.Before(time.UnixMilli(exp)) {
			return
		}
		s.st.Delete(ctx, nonceNS, e.Key)
	}
}
