// Package counter is the demo service of the node's service seam
// (docs/services.md walks through it): the smallest service with every
// part a real one has. Named counters count up by signed records.
//
//   - A record kind, counter.add (api.RecordKindCounterAdd), replicated to
//     every node like auth's records, and validated by each node itself
//     (Applier): signed by one key, a strict body (api.DecodeCounterAdd),
//     1 ≤ delta ≤ api.MaxCounterDelta. A malicious node that pushes an
//     invalid record, or serves one in catch-up, gets it refused by every
//     honest node. The same body counts once, whatever its signature.
//   - JSON-RPC methods: keymesh_counterAdd stores a record through the
//     replica (acknowledged by n−t+1 nodes), keymesh_counterGet reads
//     this node's value and asks every peer for its own.
//   - A peer RPC kind, counter/get/v1 (api.PeerCounterGet): a peer's value
//     of one counter.
//   - Store namespaces counter/value and counter/applied.
//
// It runs only on nodes started with node.Options.Demo: its records are
// free for anyone to write, which a production node must not offer.
package counter

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Kind is the record kind the counter owns.
const Kind = record.Kind(api.RecordKindCounterAdd)

// kinds decodes the counter's records and no other kind's.
var kinds = record.Kinds{Kind: "counter.add"}

// Store namespaces (api/services.go: "<service>/<name>").
const (
	nsValue   = "counter/value"   // counter name → value, 8 bytes big-endian
	nsApplied = "counter/applied" // hex(record.ID) → 1: each body counts once
)

// peerTimeout bounds one peer's answer to keymesh_counterGet.
const peerTimeout = 2 * time.Second

// Node is what the counter takes from the node it runs on; *node.Node
// has it.
type Node interface {
	Store() store.Store
	Replica() *replica.Replica
	Transport() *transport.Transport
}

// Service is one node's counter service. It implements node.Service.
type Service struct {
	st     store.Store
	submit func(ctx context.Context, rec []byte) error
	tr     *transport.Transport
}

// New returns the counter service of n.
func New(n Node) (*Service, error) {
	if n.Store() == nil || n.Replica() == nil || n.Transport() == nil {
		return nil, errors.New("counter: the node has no store, replica or transport")
	}
	return &Service{st: n.Store(), submit: n.Replica().Submit, tr: n.Transport()}, nil
}

// Name is "counter".
func (*Service) Name() string { return "counter" }

// RecordKinds: the counter owns counter.add, applied by Applier.
func (*Service) RecordKinds() map[record.Kind]replica.Applier {
	return map[record.Kind]replica.Applier{Kind: Applier{}}
}

// Methods: keymesh_counterAdd and keymesh_counterGet.
func (s *Service) Methods() []httpapi.Method {
	return []httpapi.Method{
		{Name: api.MethodCounterAdd, Handler: httpapi.Handle(s.Add)},
		{Name: api.MethodCounterGet, Handler: httpapi.Handle(s.Get)},
	}
}

// PeerRPCs: counter/get/v1.
func (s *Service) PeerRPCs() map[string]transport.Handler {
	return map[string]transport.Handler{api.PeerCounterGet: s.handleGet}
}

// Start does nothing: the counter has no background work.
func (*Service) Start(context.Context) error { return nil }

// Stop does nothing.
func (*Service) Stop() {}

// Add stores a counter.add record (keymesh_counterAdd) on a write quorum
// and returns the counter's value on this node after it.
func (s *Service) Add(ctx context.Context, p api.SignedRecord) (*api.CounterValue, error) {
	raw, err := base64.RawURLEncoding.DecodeString(p.Record)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "record must be base64url")
	}
	r, err := kinds.Unmarshal(raw)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "record: %v", err)
	}
	b, err := api.DecodeCounterAdd(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	var q *replica.QuorumError
	switch err := s.submit(ctx, raw); {
	case errors.As(err, &q):
		// The peers' refusal texts are theirs (untrusted): name them only.
		return nil, api.Errorf(api.CodeUnavailable, "record stored on %d of %d nodes, %d needed (refused by %v, down: %v); retry later", q.Stored, q.N, q.Need, q.Refused(), q.Down())
	case errors.Is(err, replica.ErrInvalid):
		return nil, api.Errorf(api.CodeInvalidInput, "counter.add refused: %v", err)
	case err != nil:
		return nil, err
	}
	v, err := value(ctx, s.st, b.Counter)
	if err != nil {
		return nil, err
	}
	return &api.CounterValue{Counter: b.Counter, Value: v}, nil
}

// Get answers keymesh_counterGet: the counter's value on this node, and
// each peer's answer to counter/get/v1 (a peer that is down, slow or
// answers nonsense gets an Error instead of a value).
func (s *Service) Get(ctx context.Context, p api.CounterGetParams) (*api.CounterValue, error) {
	if err := api.CheckCounterName(p.Counter); err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	v, err := value(ctx, s.st, p.Counter)
	if err != nil {
		return nil, err
	}
	out := &api.CounterValue{Counter: p.Counter, Value: v}
	for _, peer := range s.tr.Peers() {
		pc := api.PeerCount{Node: peer.ID}
		if !peer.Reachable {
			pc.Error = "unreachable"
		} else if pc.Value, err = s.askPeer(ctx, peer.ID, p.Counter); err != nil {
			pc.Error = err.Error()
		}
		out.Peers = append(out.Peers, pc)
	}
	return out, nil
}

func (s *Service) askPeer(ctx context.Context, peer uint16, counter string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	b, err := s.tr.Call(ctx, peer, api.PeerCounterGet, []byte(counter))
	if err != nil {
		return 0, errors.New("no answer")
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("an answer of %d bytes, not 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// handleGet answers counter/get/v1: body is a counter's name (checked like
// a client's), the answer its value here, 8 bytes big-endian.
func (s *Service) handleGet(ctx context.Context, _ uint16, body []byte) ([]byte, error) {
	name := string(body)
	if err := api.CheckCounterName(name); err != nil {
		return nil, err
	}
	v, err := value(ctx, s.st, name)
	if err != nil {
		return nil, errors.New("counter: cannot read the value")
	}
	return binary.BigEndian.AppendUint64(nil, v), nil
}

func value(ctx context.Context, ops store.Ops, name string) (uint64, error) {
	b, err := ops.Get(ctx, nsValue, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("counter: store: %w", err)
	case len(b) != 8:
		return 0, fmt.Errorf("counter: store: a value of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Applier validates and applies counter.add records: the replica.Applier
// of Kind. Every node runs it on every record it stores, pushed or
// caught up, whoever sent it.
type Applier struct{}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: counter.add: %s", replica.ErrInvalid, fmt.Sprintf(format, args...))
}

// Apply checks rec (a record of Kind, signed by one key, whose body is a
// valid api.CounterAdd) and adds its delta to the counter. A body applied
// before, under any signature, writes nothing and returns an error
// wrapping replica.ErrDuplicate. A record that fails a check returns an
// error wrapping replica.ErrInvalid and writes nothing.
func (Applier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	r, err := kinds.Unmarshal(rec)
	if err != nil {
		return invalid("%v", err)
	}
	if r.Auth.Kind != record.AuthSignature {
		return invalid("must be signed by one key")
	}
	if err := r.VerifySignature(); err != nil {
		return invalid("%v", err)
	}
	b, err := api.DecodeCounterAdd(r.Body)
	if err != nil {
		return invalid("%v", err)
	}
	id := r.ID()
	key := hex.EncodeToString(id[:])
	switch _, err := tx.Get(ctx, nsApplied, key); {
	case err == nil:
		return fmt.Errorf("counter: %x: %w", id[:8], replica.ErrDuplicate)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("counter: store: %w", err)
	}
	v, err := value(ctx, tx, b.Counter)
	if err != nil {
		return err
	}
	if v > math.MaxUint64-uint64(b.Delta) {
		return invalid("counter %s would overflow", b.Counter)
	}
	if err := tx.Put(ctx, nsValue, b.Counter, binary.BigEndian.AppendUint64(nil, v+uint64(b.Delta))); err != nil {
		return fmt.Errorf("counter: store: %w", err)
	}
	if err := tx.Put(ctx, nsApplied, key, []byte{1}); err != nil {
		return fmt.Errorf("counter: store: %w", err)
	}
	return nil
}
