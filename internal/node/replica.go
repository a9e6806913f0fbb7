package node

import (
	"context"
	"fmt"

	"github.com/keymesh/keymesh/internal/replica"
)

// Replica returns the node's record replication (package replica): Submit
// for the services whose state changes are signed records, CatchUp and
// the replicated log for tests.
func (n *Node) Replica() *replica.Replica { return n.replica }

// openReplica wires record replication into the node: it builds the
// Replica on the node's transport, store and config, and registers its
// peer handlers (replica.push, replica.pull). The Applier is svc.kinds,
// which hands each record to the service that owns its kind (seam.go), in
// the audit log's transaction (auditedApplier).
//
// start starts catch-up from every peer (at once, periodically, and
// whenever a peer link comes back), which runs until the node shuts down:
// openServices calls it once every service has claimed its record kinds.
func (n *Node) openReplica(svc *services) (start func(), err error) {
	r, err := replica.New(replica.Options{
		Transport: n.tr,
		Store:     n.store,
		Config:    n.cfg,
		Applier:   auditedApplier{svc.kinds, n.audit.log},
		Logger:    n.log.With("component", "replica"),
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.replica = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := false
	start = func() {
		started = true
		go func() {
			defer close(done)
			if err := r.Run(ctx); err != nil {
				n.log.Error("replica stopped", "err", err)
			}
		}()
	}
	n.closers = append(n.closers, func() {
		cancel()
		if started {
			<-done
		}
		r.Close()
	})
	return start, nil
}
