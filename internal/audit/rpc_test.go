package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/store"
)

// peerCaller delivers Publish's calls straight to the peers' handlers, as
// the transport would after authenticating the sender.
type peerCaller struct {
	from     uint16
	handlers map[uint16]func(context.Context, uint16, []byte) ([]byte, error)
}

func (c peerCaller) Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	if kind != KindHead {
		return nil, errors.New("unexpected kind")
	}
	return c.handlers[to](ctx, c.from, body)
}

// TestHeadHandlerRefusesMaliciousPeers plays a malicious peer against the
// audit/head/v1 handler: a head it signed for another node, a head of
// another cluster, a head signed by a key not pinned for it, garbage, and
// a truncated chain's head after an honest one are refused and change
// nothing; the honest head is kept.
func TestHeadHandlerRefusesMaliciousPeers(t *testing.T) {
	ctx := context.Background()
	pub1, id1, _ := ed25519.GenerateKey(rand.Reader)
	pub3, id3, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		// Node 2 receives; nodes 1 and 3 are its peers.
		recv := NewPublisher(PublisherOptions{Heads: NewHeadStore(open()), Cluster: "c1", Self: 2,
			Peers: map[uint16]ed25519.PublicKey{1: pub1, 3: pub3}})
		h := recv.Handler()
		st1 := open()
		l1 := NewLog(st1)
		for i := range 4 {
			l1.Append(ctx, sample(i))
		}
		sender := NewPublisher(PublisherOptions{Log: l1, Cluster: "c1", Self: 1, Identity: id1,
			Peers:  map[uint16]ed25519.PublicKey{2: nil},
			Caller: peerCaller{from: 1, handlers: map[uint16]func(context.Context, uint16, []byte) ([]byte, error){2: h}}})
		honest, err := sender.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mk := func(hd Head, id ed25519.PrivateKey) []byte {
			sh, err := SignHead(hd, id)
			if err != nil {
				t.Fatal(err)
			}
			return sh.Marshal()
		}
		now := time.Now()
		for name, c := range map[string]struct {
			from uint16
			body []byte
		}{
			"node 3 sends a head in node 1's name": {3, mk(Head{Cluster: "c1", Node: 1, Seq: 9, Time: now}, id3)},
			"another cluster":                      {1, mk(Head{Cluster: "c2", Node: 1, Seq: 9, Time: now}, id1)},
			"signed by node 3's key for node 1":    {1, mk(Head{Cluster: "c1", Node: 1, Seq: 9, Time: now}, id3)},
			"garbage":                              {1, []byte{1, 2, 3}},
			"a node outside the cluster":           {7, mk(Head{Cluster: "c1", Node: 7, Seq: 9, Time: now}, id3)},
			"truncated after the honest head":      {1, mk(Head{Cluster: "c1", Node: 1, Seq: honest.Seq - 1, Time: now.Add(time.Minute)}, id1)},
			"another hash at the honest seq":       {1, mk(Head{Cluster: "c1", Node: 1, Seq: honest.Seq, Hash: [32]byte{7}, Time: now}, id1)},
		} {
			if _, err := h(ctx, c.from, c.body); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		held, err := recv.o.Heads.Heads(ctx, 1)
		if err != nil || len(held) != 1 || held[0].Hash != honest.Hash {
			t.Fatalf("held %v %v, want only the honest head", held, err)
		}
		if others, _ := recv.o.Heads.Nodes(ctx); len(others) != 1 {
			t.Fatalf("heads held for nodes %v", others)
		}
		rep, err := Verify(ctx, st1, 1, pub1, held)
		if err != nil || !rep.OK() || rep.Matched != 4 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

// TestFinalHeadCoversLastEntries: at shutdown, Final signs and sends a
// head only when the chain grew since the last head every peer
// acknowledged, and then the peer holds a head covering the last entry.
func TestFinalHeadCoversLastEntries(t *testing.T) {
	ctx := context.Background()
	pub1, id1, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		recv := NewPublisher(PublisherOptions{Heads: NewHeadStore(open()), Cluster: "c1", Self: 2,
			Peers: map[uint16]ed25519.PublicKey{1: pub1}})
		st1 := open()
		l1 := chain(t, st1, 4)
		sender := NewPublisher(PublisherOptions{Log: l1, Cluster: "c1", Self: 1, Identity: id1,
			Peers:  map[uint16]ed25519.PublicKey{2: nil},
			Caller: peerCaller{from: 1, handlers: map[uint16]func(context.Context, uint16, []byte) ([]byte, error){2: recv.Handler()}}})
		if _, err := sender.Publish(ctx); err != nil {
			t.Fatal(err)
		}
		if sh, err := sender.Final(ctx); sh != nil || err != nil {
			t.Fatalf("nothing new, yet Final sent %v %v", sh, err)
		}
		l1.Append(ctx, sample(4))
		l1.Append(ctx, sample(5))
		if sh, err := sender.Final(ctx); err != nil || sh == nil || sh.Seq != 6 {
			t.Fatalf("final: %v %v", sh, err)
		}
		held, _ := recv.o.Heads.Heads(ctx, 1)
		if len(held) != 2 || held[1].Seq != 6 {
			t.Fatalf("peer holds %v", held)
		}
		if rep, err := Verify(ctx, st1, 1, pub1, held); err != nil || !rep.OK() || rep.Matched != 6 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}
