package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// Replica returns the node's record replication (package replica): Submit
// for the services whose state changes are signed records, CatchUp and
// the replicated log for tests.
func (n *Node) Replica() *replica.Replica { return n.replica }

// openReplica wires record replication into the node: it builds the
// Replica on the node's transport, store and config, registers its peer
// handlers (replica.push, replica.pull), and starts catch-up from every
// peer (on start, periodically, and whenever a peer link comes back),
// which runs until the node shuts down.
//
// The records replicated today are auth's (scopes, accounts, credentials,
// sessions), so auth's state machine is the Applier; a service added later
// with records of its own would put a dispatching Applier here.
func (n *Node) openReplica(svc *services) error {
	r, err := replica.New(replica.Options{
		Transport: n.tr,
		Store:     n.store,
		Config:    n.cfg,
		Applier:   invalidAs{auth.Applier{Origins: n.authOrigins()}, auth.ErrInvalid},
		Logger:    n.log.With("component", "replica"),
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.replica = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			n.log.Error("replica stopped", "err", err)
		}
	}()
	n.closers = append(n.closers, func() { cancel(); <-done; r.Close() })
	return nil
}

// invalidAs makes an Applier whose validation errors wrap its own sentinel
// (invalid) also wrap replica.ErrInvalid, which is what the replica looks
// for to refuse a record on push and skip it in catch-up.
type invalidAs struct {
	a       replica.Applier
	invalid error
}

func (x invalidAs) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	err := x.a.Apply(ctx, tx, rec)
	if err != nil && errors.Is(err, x.invalid) && !errors.Is(err, replica.ErrInvalid) {
		return fmt.Errorf("%w: %w", replica.ErrInvalid, err)
	}
	return err
}
