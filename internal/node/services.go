package node

import (
	"context"
	"fmt"

	"github.com/keymesh/keymesh/internal/counter"
	"github.com/keymesh/keymesh/internal/vaultsvc"
)

// serviceList is the node's services, in the order they open: a service
// may use one above it (the wallet asks auth before acting). Adding a
// service is its own package and one line here (docs/services.md); an
// entry marked demo opens only on a node started with Options.Demo.
var serviceList = []serviceEntry{
	{open: (*Node).openAuth},   // scopes, accounts, credentials, sessions; approvals (auth.go)
	{open: (*Node).openWallet}, // threshold wallets, authorised by auth (wallet.go)
	{open: (*Node).openRelay},  // end-to-end channels' mailboxes (relay.go)
	{open: func(n *Node) (Service, error) { return vaultsvc.New(n) }}, // the data vault: boxes, grants, revocations (internal/vaultsvc)
	{open: (*Node).openUID}, // threshold OPRF pseudonyms per scope, authorised by auth (uid.go)
	{open: func(n *Node) (Service, error) { return counter.New(n) }, demo: true}, // the demo counter (docs/services.md)
}

// serviceEntry is one line of serviceList: how to open the service, and
// whether it is a demo.
type serviceEntry struct {
	open func(*Node) (Service, error)
	demo bool
}

// openServices wires the node's services: the audit log and records
// replication first (the services append to the one and store records
// through the other), then each service of serviceList, registered on
// the seam (services.add), then started. Replication starts catching up
// only once every service has claimed its record kinds.
func (n *Node) openServices(svc *services) error {
	if err := n.openAudit(); err != nil { // first: the services append to it
		return err
	}
	startReplica, err := n.openReplica(svc)
	if err != nil {
		return err
	}
	for _, e := range serviceList {
		if e.demo && !svc.demo {
			continue
		}
		s, err := e.open(n)
		if err != nil {
			return err
		}
		if err := svc.add(s, n.tr); err != nil {
			return err
		}
	}
	svc.kinds.open()
	ctx, cancel := context.WithTimeout(context.Background(), serviceStartTimeout)
	defer cancel()
	for _, s := range svc.opened {
		if err := s.Start(ctx); err != nil {
			return fmt.Errorf("node: starting service %s: %w", s.Name(), err)
		}
		n.closers = append(n.closers, s.Stop)
	}
	startReplica()
	return nil
}
