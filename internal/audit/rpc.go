package audit

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// KindHead is the peer RPC kind (transport.Call / Handle) that carries a
// node's signed chain head to a peer. The body is SignedHead.Marshal; the
// answer is empty; a refusal is the handler's error.
const KindHead = "audit/head/v1"

// Caller sends a peer RPC: transport.Transport.Call.
type Caller interface {
	Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error)
}

// PublisherOptions configure NewPublisher.
type PublisherOptions struct {
	Log      *Log
	Heads    *HeadStore
	Cluster  string
	Self     uint16
	Identity crypto.Signer                // the node's identity key
	Peers    map[uint16]ed25519.PublicKey // the peers' pinned identity keys
	Caller   Caller
	Logger   *slog.Logger // the daemon's; nil discards
}

// Publisher signs this node's chain head and sends it to the peers, and
// keeps the heads the peers send (Handler).
type Publisher struct {
	o    PublisherOptions
	mu   sync.Mutex
	sent uint64 // the seq every peer acknowledged last
}

// NewPublisher returns a Publisher.
func NewPublisher(o PublisherOptions) *Publisher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{o: o}
}

// Handler is this node's handler of KindHead (a transport.Handler): it
// keeps a head that from signed of its own chain, for this cluster, with
// the identity key this node pins for from. A head that contradicts one
// held from the same node (a lower seq, or another hash at a held seq) is
// refused and logged as a security event: the sender rewrote or truncated
// its chain after it signed the earlier head.
func (p *Publisher) Handler() func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	return func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		sh, err := DecodeSignedHead(body)
		if err != nil {
			return nil, err
		}
		pub, ok := p.o.Peers[from]
		if !ok || sh.Node != from || sh.Cluster != p.o.Cluster {
			return nil, errors.New("audit: a head must be the sending peer's own, for this cluster")
		}
		if err := sh.Verify(pub); err != nil {
			return nil, err
		}
		err = p.o.Heads.Keep(ctx, sh)
		if errors.Is(err, ErrHeadConflict) {
			p.o.Logger.Warn("security: a peer signed an audit head that contradicts one it signed before (its log was rewritten or truncated)",
				"event", "audit_head_conflict", "peer", from, "seq", sh.Seq, "err", err)
			return nil, errors.New("audit: head refused: it contradicts a head this node holds")
		}
		if err != nil {
			p.o.Logger.Error("audit: keep a peer's head", "peer", from, "err", err)
			return nil, errors.New("audit: internal error")
		}
		return nil, nil
	}
}

// Publish signs the chain's current head and sends it to every peer. It
// returns the head (nil for an empty chain) and the peers' errors joined.
func (p *Publisher) Publish(ctx context.Context) (*SignedHead, error) {
	sh, err := p.o.Log.SignHead(ctx, p.o.Cluster, p.o.Self, p.o.Identity)
	if err != nil || sh == nil {
		return nil, err
	}
	body := sh.Marshal()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for id := range p.o.Peers {
		wg.Go(func() {
			if _, err := p.o.Caller.Call(ctx, id, KindHead, body); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("peer %d: %w", id, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return sh, fmt.Errorf("audit: publish head %d: %w", sh.Seq, err)
	}
	p.mu.Lock()
	p.sent = max(p.sent, sh.Seq)
	p.mu.Unlock()
	return sh, nil
}

// Run publishes the head every interval when the chain grew since every
// peer last acknowledged one, until ctx ends.
func (p *Publisher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !p.due(ctx) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		if _, err := p.Publish(cctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Warn("audit: publishing the chain head", "err", err)
		}
		cancel()
	}
}

// due reports whether the chain grew since every peer last acknowledged a
// head.
func (p *Publisher) due(ctx context.Context) bool {
	seq, _, err := p.o.Log.Head(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	return err == nil && seq > p.sent
}

// Final signs and sends the head once more at a clean shutdown, when the
// chain grew since the last head every peer acknowledged, so that the
// entries of the node's last minute are covered by a head its peers hold
// too (without it, they are only as good as the node's word until it
// runs again). It returns the head sent (nil if none was due) and the
// peers' errors; peers that are down at that moment miss it, and get the
// next head after the restart. Call it after Run has returned and before
// the transport closes.
func (p *Publisher) Final(ctx context.Context) (*SignedHead, error) {
	if !p.due(ctx) {
		return nil, nil
	}
	return p.Publish(ctx)
}
