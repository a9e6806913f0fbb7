package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/audit"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// auditHeadInterval is how often the node signs its audit chain's head and
// sends it to its peers, when the chain grew (package audit).
const auditHeadInterval = time.Minute

// auditFinalTimeout bounds sending the head signed at shutdown.
const auditFinalTimeout = 3 * time.Second

// auditHook holds the node's audit log (package audit) and the publisher
// of its signed heads (nil until openAudit).
type auditHook struct {
	log   *audit.Log
	pub   *audit.Publisher
	route httpapi.Route // the heads this node holds, on the API (audit.HeadsHandler)
}

// AuditLog returns the node's audit log.
func (n *Node) AuditLog() *audit.Log { return n.audit.log }

// PublishAuditHead signs the audit chain's head now and sends it to every
// peer (on demand; the node also does so every auditHeadInterval).
func (n *Node) PublishAuditHead(ctx context.Context) (*audit.SignedHead, error) {
	return n.audit.pub.Publish(ctx)
}

// openAudit wires the audit log: the peer handler of signed heads
// (audit.KindHead) and the periodic publication of this node's head. The
// services append through auditedApplier (auth records, in the record's
// own transaction) and auditEntry (wallet outcomes).
func (n *Node) openAudit() error {
	peers := map[uint16]ed25519.PublicKey{}
	for _, p := range n.cfg.Peers {
		k, err := p.PublicKey()
		if err != nil {
			return fmt.Errorf("node: peer %d: %w", p.ID, err)
		}
		peers[p.ID] = k
	}
	n.audit.log = audit.NewLog(n.store)
	n.audit.pub = audit.NewPublisher(audit.PublisherOptions{
		Log: n.audit.log, Heads: audit.NewHeadStore(n.store),
		Cluster: n.cfg.ClusterID, Self: n.cfg.ID, Identity: n.ident, Peers: peers,
		Caller: n.tr, Logger: n.log.With("component", "audit"),
	})
	n.tr.Handle(audit.KindHead, n.audit.pub.Handler())
	n.audit.route = httpapi.Route{Pattern: audit.HeadsPattern, Handler: audit.HeadsHandler(n.cfg.ID, audit.NewHeadStore(n.store), peers)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.audit.pub.Run(ctx, auditHeadInterval) }()
	// Run's closers run last to first: this one after the services
	// stopped (their last entries are in) and before the transport closes.
	n.closers = append(n.closers, func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.Background(), auditFinalTimeout)
		defer fcancel()
		if sh, err := n.audit.pub.Final(fctx); err != nil {
			n.log.Warn("audit: the head signed at shutdown did not reach every peer", "err", err)
		} else if sh != nil {
			n.log.Info("audit: head signed at shutdown", "seq", sh.Seq)
		}
	})
	return nil
}

// auditedApplier appends an audit entry for every record a wraps applies,
// in the same store transaction: the state change and its entry commit
// together, or neither does.
type auditedApplier struct {
	a   replica.Applier
	log *audit.Log
}

func (x auditedApplier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	if err := x.a.Apply(ctx, tx, rec); err != nil {
		return err
	}
	if e, ok := audit.RecordEntry(rec); ok && x.log != nil {
		if _, err := x.log.AppendTx(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// auditEntry appends e to the audit log (the wallet's outcomes); a failure
// is logged, since the operation it records already happened.
func (n *Node) auditEntry(ctx context.Context, e audit.Entry) {
	if _, err := n.audit.log.Append(context.WithoutCancel(ctx), e); err != nil {
		n.log.Error("audit: append", "kind", e.Kind, "err", err)
	}
}
