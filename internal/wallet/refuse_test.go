package wallet

import (
	"context"
	"sync"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/transport"
)

// idleTransport is a Transport that reaches no peer, for a second Service
// over a node's store (a second API process of the node).
type idleTransport struct{}

func (idleTransport) Call(context.Context, uint16, string, []byte) ([]byte, error) {
	return nil, &transport.PeerDownError{}
}
func (idleTransport) Handle(string, transport.Handler) {}
func (idleTransport) Peers() []transport.PeerStatus    { return nil }

// TestRefusalsAccumulate is finding 3 of issue 12: refusing peer 1 and
// peer 3 at the same time on one wallet, from this node's service and from
// a second service over the same store (as a second process sharing the
// node's database, whose cache was loaded before either refusal), loses
// neither. Each refusal holds on the live share at once, and after a
// restart the node's share record refuses both.
func TestRefusalsAccumulate(t *testing.T) {
	ctx := context.Background()
	authz := &fakeAuth{}
	c := newCluster(t, authz, nil)
	alice := authz.newUser("app", "alice")
	addr := createAccount(t, c, 0, alice)

	n := c.nodes[1]
	w, err := n.svc.load(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(Options{Config: n.cfg, Transport: idleTransport{}, Store: n.st, Sealer: n.svc.sealer, Auth: authz,
		RunSession: func(context.Context, string, *round.Session) (any, error) { panic("not used") }})
	if err != nil {
		t.Fatal(err)
	}
	ow, err := other.load(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if w.share.Refused(1) || ow.share.Refused(3) {
		t.Fatal("refused before any refusal")
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.svc.refuse(w, []round.PartyID{1}) })
	wg.Go(func() { other.refuse(ow, []round.PartyID{3}) })
	wg.Wait()
	if !w.share.Refused(1) || !ow.share.Refused(3) {
		t.Fatal("a refusal does not hold on the live share")
	}
	if cw, _ := n.svc.load(ctx, addr); cw != w {
		t.Fatal("the cache holds another wallet than the one refused")
	}

	c.restart(1)
	w, err = c.nodes[1].svc.load(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !w.share.Refused(1) || !w.share.Refused(3) {
		t.Fatalf("after a restart: refuses node 1: %v, node 3: %v; want both", w.share.Refused(1), w.share.Refused(3))
	}
}
