// Package relay is the relay service on the node's seam (docs/services.md):
// it stores and forwards the messages of end-to-end channels between an
// issuer and a holder (package channel), which it can neither read nor
// alter, inject, replay or reorder without the receiver noticing. The
// protocol's security is the channel's; this package is storage, fan-out
// and quotas.
//
//   - keymesh_relayPost stores a message in one inbox (scope, mailbox,
//     recipient) on the answering node and forwards it to every reachable
//     peer (relay/post/v1), so that the recipient may fetch it from any
//     node: one node that drops or alters messages delays the channel (the
//     receiver sees a gap or an unauthentic message and fetches from
//     another node), it cannot break it. The same bytes posted twice are
//     stored once per node.
//   - keymesh_relayFetch returns this node's inbox after an index.
//   - Neither takes an approval: a mailbox id is 128 bits no one but the
//     two parties and the relay's nodes knows, and each message is
//     authenticated end to end. What a stranger can do is fill inboxes,
//     which the quotas bound: per inbox (api.MaxRelayInbox messages,
//     api.MaxRelayInboxBytes), per scope on a node (Options.ScopeBytes),
//     every request also taking the client's and the scope's rate-limit
//     tokens (httpapi). An inbox is forgotten api.RelayInboxTTLHours after
//     its last post; a scope no node knows gets nothing stored.
//
// The relay keeps no replicated state (no record kinds): an inbox is each
// node's own, and its indexes differ from node to node.
//
// Known limit: a malicious peer may forward posts to the honest nodes as
// any client may post, so it can fill a known scope's inboxes and budget
// there (refusals are CodeLimitExceeded, the data expires); a per-peer
// budget for forwarded bytes would bound it further.
package relay

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Store namespaces (api/services.go: "<service>/<name>").
const (
	nsInbox = "relay/inbox" // inbox key → inboxMeta
	nsMsg   = "relay/msg"   // inbox key/index (16 hex digits) → message
	nsSeen  = "relay/seen"  // inbox key/SHA-256 of a message (hex) → its index, 8 bytes
	nsScope = "relay/scope" // scope (hex) → bytes stored for it here, 8 bytes
)

const (
	// DefaultScopeBytes is Options.ScopeBytes's default.
	DefaultScopeBytes = 256 << 20
	// forwardTimeout bounds one peer's answer to a forwarded post.
	forwardTimeout = 2 * time.Second
	// fetchBytes bounds the messages of one fetch (at least one is
	// returned): the answer stays near MaxBodyBytes.
	fetchBytes = api.MaxBodyBytes
	// sweepEvery is how often expired inboxes are deleted; sweepBatch
	// bounds the inboxes one pass looks at.
	sweepEvery = time.Minute
	sweepBatch = 10000
)

var inboxTTL = api.RelayInboxTTLHours * time.Hour

// Transport is what the relay uses of the peer transport.
type Transport interface {
	Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error)
	Peers() []transport.PeerStatus
}

// Options are what the relay takes from its node.
type Options struct {
	Store     store.Store
	Transport Transport
	// ScopeKnown reports whether a scope exists on this node: posts to
	// others are refused.
	ScopeKnown func(ctx context.Context, scope string) bool
	// ScopeBytes bounds what one scope's inboxes hold on this node;
	// 0 means DefaultScopeBytes.
	ScopeBytes int64
	Logger     *slog.Logger
	Now        func() time.Time // time.Now when nil
}

// Service is one node's relay. It implements node.Service.
type Service struct {
	st         store.Store
	tr         Transport
	scopeKnown func(context.Context, string) bool
	scopeBytes int64
	log        *slog.Logger
	now        func() time.Time

	stop chan struct{}
	done sync.WaitGroup
}

// New returns the relay service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Transport == nil || o.ScopeKnown == nil {
		return nil, errors.New("relay: Store, Transport and ScopeKnown are required")
	}
	s := &Service{st: o.Store, tr: o.Transport, scopeKnown: o.ScopeKnown, scopeBytes: o.ScopeBytes, log: o.Logger, now: o.Now}
	if s.scopeBytes <= 0 {
		s.scopeBytes = DefaultScopeBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Name is "relay".
func (*Service) Name() string { return "relay" }

// RecordKinds: none, the relay keeps no replicated state.
func (*Service) RecordKinds() map[record.Kind]replica.Applier { return nil }

// Methods: keymesh_relayPost and keymesh_relayFetch.
func (s *Service) Methods() []httpapi.Method {
	return []httpapi.Method{
		{Name: api.MethodRelayPost, Handler: httpapi.Handle(s.Post)},
		{Name: api.MethodRelayFetch, Handler: httpapi.Handle(s.Fetch)},
	}
}

// PeerRPCs: relay/post/v1.
func (s *Service) PeerRPCs() map[string]transport.Handler {
	return map[string]transport.Handler{api.PeerRelayPost: s.handlePost}
}

// Start starts the sweep of expired inboxes.
func (s *Service) Start(context.Context) error {
	s.stop = make(chan struct{})
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), sweepEvery)
				if n, err := s.Sweep(ctx); err != nil {
					s.log.Warn("relay: sweeping expired inboxes", "err", err)
				} else if n > 0 {
					s.log.Info("relay: expired inboxes deleted", "inboxes", n)
				}
				cancel()
			}
		}
	}()
	return nil
}

// Stop stops the sweep and waits for it.
func (s *Service) Stop() {
	if s.stop != nil {
		close(s.stop)
		s.done.Wait()
	}
}

// inbox names one inbox.
type inbox struct {
	scope, mailbox [16]byte
	to             byte
}

func (b inbox) key() string {
	return hex.EncodeToString(b.scope[:]) + "/" + hex.EncodeToString(b.mailbox[:]) + "/" + strconv.Itoa(int(b.to))
}

func parseInbox(scope, mailbox, to string) (inbox, error) {
	var b inbox
	var err error
	if b.scope, err = api.ParseRelayID("scope", scope); err != nil {
		return b, err
	}
	if b.mailbox, err = api.ParseRelayID("mailbox", mailbox); err != nil {
		return b, err
	}
	b.to, err = api.RelayTo(to)
	return b, err
}

// inboxMeta is an inbox's bookkeeping: the next index, its messages and
// bytes, and when it was last posted to (Unix ms).
type inboxMeta struct {
	next, bytes, last uint64
	count             uint32
}

const metaLen = 28

func (m inboxMeta) marshal() []byte {
	b := binary.BigEndian.AppendUint64(nil, m.next)
	b = binary.BigEndian.AppendUint32(b, m.count)
	b = binary.BigEndian.AppendUint64(b, m.bytes)
	return binary.BigEndian.AppendUint64(b, m.last)
}

func loadMeta(ctx context.Context, ops store.Ops, key string) (inboxMeta, error) {
	b, err := ops.Get(ctx, nsInbox, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inboxMeta{next: 1}, nil
	case err != nil:
		return inboxMeta{}, err
	case len(b) != metaLen:
		return inboxMeta{}, fmt.Errorf("relay: inbox %s: %d bytes of bookkeeping", key, len(b))
	}
	return inboxMeta{
		next:  binary.BigEndian.Uint64(b),
		count: binary.BigEndian.Uint32(b[8:]),
		bytes: binary.BigEndian.Uint64(b[12:]),
		last:  binary.BigEndian.Uint64(b[20:]),
	}, nil
}

func getUint64(ctx context.Context, ops store.Ops, ns, key string) (uint64, error) {
	b, err := ops.Get(ctx, ns, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(b) != 8:
		return 0, fmt.Errorf("relay: %s %s: %d bytes", ns, key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Post answers keymesh_relayPost: it stores the message here, then forwards
// it to every reachable peer.
func (s *Service) Post(ctx context.Context, p api.RelayPostParams) (*api.RelayPostResult, error) {
	b, err := parseInbox(p.Scope, p.Mailbox, p.To)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	msg, err := base64.RawURLEncoding.Strict().DecodeString(p.Message)
	if err != nil || len(msg) == 0 || len(msg) > api.MaxRelayMessage {
		return nil, api.Errorf(api.CodeInvalidParams, "message must be 1 to %d bytes in unpadded base64url", api.MaxRelayMessage)
	}
	if !s.scopeKnown(ctx, p.Scope) {
		return nil, api.Errorf(api.CodeNotFound, "no scope %s", p.Scope)
	}
	idx, err := s.store(ctx, b, msg)
	if err != nil {
		return nil, err
	}
	body := (&api.RelayPost{Scope: b.scope, Mailbox: b.mailbox, To: b.to, Message: msg}).Marshal()
	return &api.RelayPostResult{Index: idx, Stored: 1 + s.forward(ctx, body)}, nil
}

// forward sends a post to every reachable peer and returns how many stored
// it.
func (s *Service) forward(ctx context.Context, body []byte) int {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for _, peer := range s.tr.Peers() {
		if !peer.Reachable {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
			defer cancel()
			if _, err := s.tr.Call(ctx, peer.ID, api.PeerRelayPost, body); err != nil {
				s.log.Debug("relay: a peer did not store a forwarded message", "peer", peer.ID, "err", err)
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}

// handlePost answers relay/post/v1: a peer's forwarded post, checked like
// a client's and stored (never forwarded again).
func (s *Service) handlePost(ctx context.Context, _ uint16, body []byte) ([]byte, error) {
	p, err := api.DecodeRelayPost(body)
	if err != nil {
		return nil, err
	}
	if !s.scopeKnown(ctx, hex.EncodeToString(p.Scope[:])) {
		return nil, errors.New("relay: unknown scope")
	}
	if _, err := s.store(ctx, inbox{scope: p.Scope, mailbox: p.Mailbox, to: p.To}, p.Message); err != nil {
		return nil, errors.New("relay: not stored")
	}
	return nil, nil
}

// store appends msg to inbox b within its quotas, or returns the index it
// already has there.
func (s *Service) store(ctx context.Context, b inbox, msg []byte) (uint64, error) {
	key := b.key()
	sum := sha256.Sum256(msg)
	seenKey := key + "/" + hex.EncodeToString(sum[:])
	scopeKey := hex.EncodeToString(b.scope[:])
	var idx uint64
	err := s.st.Update(ctx, func(tx store.Ops) error {
		if prev, err := getUint64(ctx, tx, nsSeen, seenKey); err != nil {
			return err
		} else if prev != 0 {
			idx = prev
			return nil
		}
		m, err := loadMeta(ctx, tx, key)
		if err != nil {
			return err
		}
		size := uint64(len(msg))
		if m.count >= api.MaxRelayInbox || m.bytes+size > api.MaxRelayInboxBytes {
			return api.Errorf(api.CodeLimitExceeded, "the inbox is full (%d messages, %d bytes at most); it is forgotten %d hours after its last post", api.MaxRelayInbox, api.MaxRelayInboxBytes, api.RelayInboxTTLHours)
		}
		used, err := getUint64(ctx, tx, nsScope, scopeKey)
		if err != nil {
			return err
		}
		if used+size > uint64(s.scopeBytes) {
			return api.Errorf(api.CodeLimitExceeded, "the scope's relay storage on this node is full (%d bytes)", s.scopeBytes)
		}
		idx = m.next
		m.next++
		m.count++
		m.bytes += size
		m.last = uint64(s.now().UnixMilli())
		for _, w := range []struct {
			ns, key string
			v       []byte
		}{
			{nsMsg, fmt.Sprintf("%s/%016x", key, idx), msg},
			{nsSeen, seenKey, binary.BigEndian.AppendUint64(nil, idx)},
			{nsInbox, key, m.marshal()},
			{nsScope, scopeKey, binary.BigEndian.AppendUint64(nil, used+size)},
		} {
			if err := tx.Put(ctx, w.ns, w.key, w.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return 0, ae
		}
		return 0, fmt.Errorf("relay: storing a message: %w", err)
	}
	return idx, nil
}

// Fetch answers keymesh_relayFetch. It reads only the messages it returns
// (and one more, to say More): an inbox's indexes on a node run from 1
// without gaps, since only a whole inbox is ever deleted.
func (s *Service) Fetch(ctx context.Context, p api.RelayFetchParams) (*api.RelayFetchResult, error) {
	b, err := parseInbox(p.Scope, p.Mailbox, p.To)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	key := b.key()
	m, err := loadMeta(ctx, s.st, key)
	if err != nil {
		return nil, fmt.Errorf("relay: reading an inbox: %w", err)
	}
	out := &api.RelayFetchResult{Messages: []api.RelayMessage{}}
	size := 0
	for idx := p.After + 1; idx < m.next && idx > p.After; idx++ {
		if len(out.Messages) == api.MaxRelayFetch {
			out.More = true
			break
		}
		v, err := s.st.Get(ctx, nsMsg, fmt.Sprintf("%s/%016x", key, idx))
		if errors.Is(err, store.ErrNotFound) {
			break // swept meanwhile
		} else if err != nil {
			return nil, fmt.Errorf("relay: reading an inbox: %w", err)
		}
		if len(out.Messages) > 0 && size+len(v) > fetchBytes {
			out.More = true
			break
		}
		size += len(v)
		out.Messages = append(out.Messages, api.RelayMessage{Index: idx, Message: base64.RawURLEncoding.EncodeToString(v)})
	}
	return out, nil
}

// Sweep deletes the inboxes whose last post is older than
// api.RelayInboxTTLHours (at most sweepBatch of them a pass) and returns
// how many it deleted.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	entries, err := s.st.List(ctx, nsInbox, "", sweepBatch)
	if err != nil {
		return 0, err
	}
	cutoff := uint64(s.now().Add(-inboxTTL).UnixMilli())
	n := 0
	for _, e := range entries {
		if len(e.Value) != metaLen || binary.BigEndian.Uint64(e.Value[20:]) > cutoff {
			continue
		}
		if err := s.st.Update(ctx, func(tx store.Ops) error { return deleteInbox(ctx, tx, e.Key) }); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func deleteInbox(ctx context.Context, tx store.Ops, key string) error {
	m, err := loadMeta(ctx, tx, key)
	if err != nil {
		return err
	}
	for _, ns := range []string{nsMsg, nsSeen} {
		es, err := tx.List(ctx, ns, key+"/", 0)
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := tx.Delete(ctx, ns, e.Key); err != nil {
				return err
			}
		}
	}
	scopeKey, _, _ := strings.Cut(key, "/")
	used, err := getUint64(ctx, tx, nsScope, scopeKey)
	if err != nil {
		return err
	}
	if used > m.bytes {
		err = tx.Put(ctx, nsScope, scopeKey, binary.BigEndian.AppendUint64(nil, used-m.bytes))
	} else {
		err = tx.Delete(ctx, nsScope, scopeKey)
	}
	if err != nil {
		return err
	}
	return tx.Delete(ctx, nsInbox, key)
}
