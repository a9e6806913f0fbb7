package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Service is one service on the node's seam (docs/services.md): what it is
// called and what it adds to the node. The node asks for each part once,
// while New runs, in the order of serviceList, and refuses to start when
// two services claim one record kind, method or peer RPC kind, or when a
// name breaks the convention of api/services.go.
//
// A service's package does not import this one: it implements Service
// with the types of the packages below (httpapi, record, replica,
// transport), and its constructor takes what it needs from *Node through
// an interface of its own (see internal/counter).
type Service interface {
	// Name names the service (api.CheckServiceName): the prefix of its
	// peer RPC kinds and store namespaces.
	Name() string
	// RecordKinds maps each record kind the service owns to the Applier
	// that validates and applies records of that kind (the replica.Applier
	// contract: a record that fails validation returns an error wrapping
	// replica.ErrInvalid and writes nothing). The node hands every record
	// to the Applier of its kind and refuses records of kinds no service
	// owns. Nil: the service keeps no replicated state.
	RecordKinds() map[record.Kind]replica.Applier
	// Methods are the service's JSON-RPC methods (httpapi.Handle adapts a
	// typed method).
	Methods() []httpapi.Method
	// PeerRPCs maps each peer RPC kind the service serves
	// (api.CheckPeerKind: "<service>/<name>/v<N>") to its handler. A
	// handler treats every body as possibly malicious.
	PeerRPCs() map[string]transport.Handler
	// Start starts the service's background work, after every service
	// is registered and before the node serves. ctx bounds the start
	// only; the work runs until Stop.
	Start(ctx context.Context) error
	// Stop stops what Start started and waits for it. The node calls it
	// once, in reverse order of Start, before it closes the transport and
	// the store.
	Stop()
}

// serviceStartTimeout bounds the start of all services (Service.Start).
const serviceStartTimeout = 30 * time.Second

// routeServer is a Service that also serves plain HTTP routes beside the
// JSON-RPC endpoint (auth's /login page).
type routeServer interface {
	Routes() []httpapi.Route
}

// services collects what the node's services add to the API while New
// wires them: JSON-RPC methods, extra HTTP routes, record kinds and peer
// RPC kinds, each with the service that added it.
type services struct {
	reg    *httpapi.Registry
	routes []httpapi.Route
	kinds  *recordKinds
	peer   map[string]string // peer RPC kind → service
	demo   bool              // open the demo entries of serviceList (Options.Demo)
	opened []Service
}

func newServices(demo bool) *services {
	return &services{reg: httpapi.NewRegistry(), kinds: newRecordKinds(), peer: map[string]string{}, demo: demo}
}

// route adds an extra HTTP route (see httpapi.Route).
func (s *services) route(r httpapi.Route) { s.routes = append(s.routes, r) }

// add registers what svc adds: its record kinds with the dispatcher, its
// methods with the registry, its peer RPC handlers with h (the node's
// transport). Nothing is registered when any part is refused.
func (s *services) add(svc Service, h interface {
	Handle(string, transport.Handler)
}) error {
	name := svc.Name()
	if err := api.CheckServiceName(name); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	for _, o := range s.opened {
		if o.Name() == name {
			return fmt.Errorf("node: two services named %s", name)
		}
	}
	have := s.reg.Methods()
	ms := svc.Methods()
	for _, m := range ms {
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			if _, dup := slices.BinarySearch(have, n); dup || n == "" || m.Handler == nil {
				return fmt.Errorf("node: service %s: method %q is empty or registered already", name, n)
			}
		}
	}
	peer := svc.PeerRPCs()
	for kind, fn := range peer {
		if err := api.CheckPeerKind(name, kind); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if o, dup := s.peer[kind]; dup || fn == nil {
			return fmt.Errorf("node: service %s: peer RPC kind %s is nil or served by %s already", name, kind, o)
		}
	}
	if err := s.kinds.claim(name, svc.RecordKinds()); err != nil {
		return err
	}
	s.reg.Add(ms...)
	for _, kind := range slices.Sorted(maps.Keys(peer)) {
		s.peer[kind] = name
		h.Handle(kind, peer[kind])
	}
	if rs, ok := svc.(routeServer); ok {
		s.routes = append(s.routes, rs.Routes()...)
	}
	s.opened = append(s.opened, svc)
	return nil
}

// recordKinds is the node's replica.Applier: it hands each record to the
// Applier of the service that owns its kind (Service.RecordKinds), and
// refuses, as invalid, a record of a kind no service on this node owns.
// Kinds are claimed while New runs; records are applied only once open
// is called, after every service claimed its kinds, so that a record of a
// service not registered yet is never skipped as unknown.
type recordKinds struct {
	owner map[record.Kind]string
	apply map[record.Kind]replica.Applier
	ready atomic.Bool
}

// errServicesNotOpen is Apply's error before open: not ErrInvalid, so a
// record that arrives then is neither refused for good nor skipped.
var errServicesNotOpen = errors.New("node: services are not open yet")

func newRecordKinds() *recordKinds {
	return &recordKinds{owner: map[record.Kind]string{}, apply: map[record.Kind]replica.Applier{}}
}

// claim registers the kinds service owns. Kind 0, a nil Applier and a kind
// another service owns already are errors, and then nothing is claimed.
func (d *recordKinds) claim(service string, kinds map[record.Kind]replica.Applier) error {
	if d.ready.Load() {
		return fmt.Errorf("node: service %s claims record kinds after the services opened", service)
	}
	ks := slices.SortedFunc(maps.Keys(kinds), func(a, b record.Kind) int { return cmp.Compare(a, b) })
	for _, k := range ks {
		if k == 0 || kinds[k] == nil {
			return fmt.Errorf("node: service %s claims record kind %d with no applier, or kind 0", service, k)
		}
		if o, dup := d.owner[k]; dup {
			return fmt.Errorf("node: record kind %d (%s) is claimed by both %s and %s", k, k, o, service)
		}
	}
	for _, k := range ks {
		d.owner[k], d.apply[k] = service, kinds[k]
	}
	return nil
}

// open starts applying records; no kind can be claimed after it.
func (d *recordKinds) open() { d.ready.Store(true) }

// Apply implements replica.Applier.
func (d *recordKinds) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	if !d.ready.Load() {
		return errServicesNotOpen
	}
	k, err := record.PeekKind(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", replica.ErrInvalid, err)
	}
	a, ok := d.apply[k]
	if !ok {
		return fmt.Errorf("%w: record kind %d: no service on this node owns it", replica.ErrInvalid, k)
	}
	return a.Apply(ctx, tx, rec)
}

// peerRecorder is the transport handed to a service whose constructor
// registers its own peer handlers (the wallet): it keeps them for the
// service's PeerRPCs, so that they go through the seam's checks like any
// other service's.
type peerRecorder struct {
	*transport.Transport
	handlers map[string]transport.Handler
}

func newPeerRecorder(tr *transport.Transport) *peerRecorder {
	return &peerRecorder{Transport: tr, handlers: map[string]transport.Handler{}}
}

// Handle keeps h for kind.
func (p *peerRecorder) Handle(kind string, h transport.Handler) { p.handlers[kind] = h }
