package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// claimer is a service that claims what a test tells it to: a service
// with a wiring mistake, or one that tries to take another's names.
type claimer struct {
	name    string
	kinds   []record.Kind
	methods []string
	peer    []string
}

func (c claimer) Name() string { return c.name }
func (c claimer) RecordKinds() map[record.Kind]replica.Applier {
	m := map[record.Kind]replica.Applier{}
	for _, k := range c.kinds {
		m[k] = applyNothing{}
	}
	return m
}
func (c claimer) Methods() []httpapi.Method {
	var ms []httpapi.Method
	for _, n := range c.methods {
		ms = append(ms, httpapi.Method{Name: n, Handler: func(context.Context, json.RawMessage) (any, error) { return c.name, nil }})
	}
	return ms
}
func (c claimer) PeerRPCs() map[string]transport.Handler {
	m := map[string]transport.Handler{}
	for _, k := range c.peer {
		m[k] = func(context.Context, uint16, []byte) ([]byte, error) { return []byte(c.name), nil }
	}
	return m
}
func (claimer) Start(context.Context) error { return nil }
func (claimer) Stop()                       {}

type applyNothing struct{}

func (applyNothing) Apply(context.Context, store.Ops, []byte) error { return nil }

// handled records the peer handlers the seam registers.
type handled map[string]transport.Handler

func (h handled) Handle(kind string, f transport.Handler) { h[kind] = f }

// TestSeamRefusesClashes: a service that claims a record kind, method or
// peer RPC kind another service has, breaks the naming convention, or
// takes another's name is refused, and nothing of it is registered.
func TestSeamRefusesClashes(t *testing.T) {
	svc, peer := newServices(false), handled{}
	alpha := claimer{name: "alpha", kinds: []record.Kind{200}, methods: []string{"keymesh_alphaGet"}, peer: []string{"alpha/get/v1"}}
	if err := svc.add(alpha, peer); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    claimer
		want string
	}{
		{claimer{name: "beta", kinds: []record.Kind{201, 200}, methods: []string{"keymesh_betaGet"}, peer: []string{"beta/get/v1"}}, "record kind 200 (kind(200)) is claimed by both alpha and beta"},
		{claimer{name: "beta", methods: []string{"keymesh_betaGet", "keymesh_alphaGet"}, peer: []string{"beta/get/v1"}}, `method "keymesh_alphaGet"`},
		{claimer{name: "beta", methods: []string{"keymesh_betaGet"}, peer: []string{"alpha/get/v1"}}, "another service's prefix"},
		{claimer{name: "beta", methods: []string{"keymesh_betaGet"}, peer: []string{"beta.get"}}, "not three parts"},
		{claimer{name: "beta", kinds: []record.Kind{0}}, "kind 0"},
		{claimer{name: "alpha"}, "two services named alpha"},
		{claimer{name: "Beta"}, "service name"},
	} {
		err := svc.add(c.s, peer)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.s, err, c.want)
		}
	}
	if ms := svc.reg.Methods(); !slices.Equal(ms, []string{"keymesh_alphaGet"}) {
		t.Fatalf("methods registered: %v", ms)
	}
	if len(peer) != 1 || peer["alpha/get/v1"] == nil || len(svc.kinds.owner) != 1 || len(svc.opened) != 1 {
		t.Fatalf("registered of the refused services: peer %v, kinds %v, opened %d", peer, svc.kinds.owner, len(svc.opened))
	}
}

// TestServiceKindClashStopsStartup: a service added to serviceList that
// claims one of auth's record kinds stops New with an error naming both
// services, so that no record can reach the wrong service's Applier.
func TestServiceKindClashStopsStartup(t *testing.T) {
	saved := serviceList
	t.Cleanup(func() { serviceList = saved })
	serviceList = append(slices.Clone(saved), serviceEntry{open: func(*Node) (Service, error) {
		return claimer{name: "thief", kinds: []record.Kind{record.SessionCreate}}, nil
	}})
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteCluster(dir, cfgs); err != nil {
		t.Fatal(err)
	}
	if cfgs, err = LoadCluster(dir); err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0")})
	if err == nil {
		n.Close()
		t.Fatal("a node started with two services claiming session.create")
	}
	if !strings.Contains(err.Error(), "record kind 6 (session.create) is claimed by both auth and thief") {
		t.Fatalf("startup error: %v", err)
	}
}

// TestRecordKindsDispatch: before the services are open, a record is
// neither applied nor refused as invalid (it must not be skipped for good
// in catch-up); after, a record of a kind no service owns, and bytes that
// are no record, are refused as invalid, and a record goes to its owner.
func TestRecordKindsDispatch(t *testing.T) {
	d := newRecordKinds()
	got := 0
	if err := d.claim("alpha", map[record.Kind]replica.Applier{200: countApply{&got}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := []byte{record.Version, 200, 0}
	if err := d.Apply(ctx, nil, rec); !errors.Is(err, errServicesNotOpen) || errors.Is(err, replica.ErrInvalid) || got != 0 {
		t.Fatalf("before open: %v (applied %d)", err, got)
	}
	d.open()
	if err := d.claim("beta", map[record.Kind]replica.Applier{201: applyNothing{}}); err == nil {
		t.Fatal("a kind claimed after open")
	}
	for _, bad := range [][]byte{{record.Version, 201, 0}, {record.Version, 0}, {9, 200}, nil} {
		if err := d.Apply(ctx, nil, bad); !errors.Is(err, replica.ErrInvalid) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	if err := d.Apply(ctx, nil, rec); err != nil || got != 1 {
		t.Fatalf("owned kind: %v (applied %d)", err, got)
	}
}

type countApply struct{ n *int }

func (c countApply) Apply(context.Context, store.Ops, []byte) error { *c.n++; return nil }

// TestUnknownRecordKindRefused: on a real cluster, a correctly signed
// record of a kind no service owns (here the demo counter's, on nodes
// started without Options.Demo, and an unallocated one) is refused by the
// node it is submitted to and by a peer it is pushed to (as a lying node
// would), and stored by neither.
func TestUnknownRecordKindRefused(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	key, err := record.GenerateKey(record.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []record.Kind{api.RecordKindCounterAdd, 150} {
		r, err := record.Sign(k, (&api.CounterAdd{Counter: "visits", Delta: 1}).Marshal(), key)
		if err != nil {
			t.Fatal(err)
		}
		rec := r.Marshal()
		if err := tc.nodes[0].Replica().Submit(ctx, rec); !errors.Is(err, replica.ErrInvalid) || !strings.Contains(err.Error(), "no service on this node owns it") {
			t.Fatalf("kind %d: Submit: %v", k, err)
		}
		_, err = tc.nodes[0].Transport().Call(ctx, 2, "replica.push", append([]byte{1}, rec...))
		var re *transport.RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
			t.Fatalf("kind %d: push to node 2: %v", k, err)
		}
		for i, n := range tc.nodes[:2] {
			if ok, err := n.Replica().Has(ctx, replica.RecordID(rec)); err != nil || ok {
				t.Fatalf("kind %d: node %d stored it: %v %v", k, i+1, ok, err)
			}
		}
	}
	// Without Options.Demo, the demo's methods are not served either.
	err = tc.clients[0].Call(ctx, api.MethodCounterGet, api.CounterGetParams{Counter: "visits"}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeMethodNotFound {
		t.Fatalf("keymesh_counterGet on a node without the demo: %v", err)
	}
}
