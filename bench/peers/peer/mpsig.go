package peer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/pool"
	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/doerner"
)

const mpsVersion = "multi-party-sig v0.7.0-alpha-2025-01-28"

// NewCMP returns multi-party-sig's CMP at t-of-n (its "threshold" parameter
// is t-1). Sign is the full protocol (presigning and the online round in
// one run), not the online round of a stored presignature. Keygen includes
// the auxiliary-info phase that generates every party's Paillier key
// (safe primes), which CMP cannot take from a cache.
func NewCMP(t, n int, timeout time.Duration) (Protocol, error) {
	if t < 2 || t > n {
		return nil, fmt.Errorf("peer: cmp: invalid %d-of-%d", t, n)
	}
	return &cmpProtocol{t: t, n: n, timeout: timeout}, nil
}

type cmpProtocol struct {
	t, n    int
	timeout time.Duration
}

func (p *cmpProtocol) Name() string { return mpsVersion + " CMP" }
func (p *cmpProtocol) T() int       { return p.t }
func (p *cmpProtocol) N() int       { return p.n }
func (p *cmpProtocol) Note() string {
	return "keygen includes Paillier key generation; sign = presign + online, in one run"
}

type cmpKey struct {
	ids     party.IDSlice
	configs map[party.ID]*cmp.Config
	pub     *secp256k1.PublicKey
}

func (k *cmpKey) PublicKey() *secp256k1.PublicKey { return k.pub }

func mpsIDs(n int) party.IDSlice {
	ids := make([]party.ID, n)
	for i := range ids {
		ids[i] = party.ID(fmt.Sprintf("P%d", i+1))
	}
	return party.NewIDSlice(ids)
}

func (p *cmpProtocol) Keygen() (Key, error) {
	ids := mpsIDs(p.n)
	pools := newPools(p.n)
	defer tearDown(pools)
	handlers := make([]protocol.Handler, p.n)
	for i, id := range ids {
		h, err := protocol.NewMultiHandler(cmp.Keygen(curve.Secp256k1{}, id, ids, p.t-1, pools[i]), nil)
		if err != nil {
			return nil, wrap(p, "keygen", err)
		}
		handlers[i] = h
	}
	results, _, err := runMPS(ids, handlers, p.timeout)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	k := &cmpKey{ids: ids, configs: make(map[party.ID]*cmp.Config, p.n)}
	for i, r := range results {
		c, ok := r.(*cmp.Config)
		if !ok {
			return nil, wrap(p, "keygen", fmt.Errorf("result of type %T", r))
		}
		k.configs[ids[i]] = c
	}
	if k.pub, err = mpsPublicKey(k.configs[ids[0]].PublicPoint()); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	return k, nil
}

func (p *cmpProtocol) Sign(key Key, digest []byte) (*Signature, error) {
	k, ok := key.(*cmpKey)
	if !ok || len(digest) != 32 {
		return nil, wrap(p, "sign", errors.New("bad key or digest"))
	}
	signers := k.ids[:p.t]
	pools := newPools(p.t)
	defer tearDown(pools)
	handlers := make([]protocol.Handler, p.t)
	for i, id := range signers {
		h, err := protocol.NewMultiHandler(cmp.Sign(k.configs[id], signers, digest, pools[i]), nil)
		if err != nil {
			return nil, wrap(p, "sign", err)
		}
		handlers[i] = h
	}
	results, bytes, err := runMPS(signers, handlers, p.timeout)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig, err := mpsSignature(results[0])
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig.Bytes = bytes
	return sig, nil
}

// NewDoerner returns multi-party-sig's 2-of-2 protocol of Doerner, Kondi,
// Lee and shelat (IEEE S&P 2018, "DKLs18"): OT-based, no Paillier.
func NewDoerner(timeout time.Duration) Protocol { return &doernerProtocol{timeout: timeout} }

type doernerProtocol struct{ timeout time.Duration }

func (p *doernerProtocol) Name() string { return mpsVersion + " Doerner (DKLs18)" }
func (p *doernerProtocol) T() int       { return 2 }
func (p *doernerProtocol) N() int       { return 2 }
func (p *doernerProtocol) Note() string { return "2-of-2 only" }

type doernerKey struct {
	receiver *doerner.ConfigReceiver
	sender   *doerner.ConfigSender
	pub      *secp256k1.PublicKey
}

func (k *doernerKey) PublicKey() *secp256k1.PublicKey { return k.pub }

func sessionID() ([]byte, error) {
	sid := make([]byte, 32)
	_, err := rand.Read(sid)
	return sid, err
}

func (p *doernerProtocol) Keygen() (Key, error) {
	ids := mpsIDs(2)
	pools := newPools(2)
	defer tearDown(pools)
	sid, err := sessionID()
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	h0, err := protocol.NewTwoPartyHandler(doerner.Keygen(curve.Secp256k1{}, true, ids[0], ids[1], pools[0]), sid, true)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	h1, err := protocol.NewTwoPartyHandler(doerner.Keygen(curve.Secp256k1{}, false, ids[1], ids[0], pools[1]), sid, false)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	results, _, err := runMPS(ids, []protocol.Handler{h0, h1}, p.timeout)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	k := &doernerKey{}
	var ok0, ok1 bool
	k.receiver, ok0 = results[0].(*doerner.ConfigReceiver)
	k.sender, ok1 = results[1].(*doerner.ConfigSender)
	if !ok0 || !ok1 {
		return nil, wrap(p, "keygen", fmt.Errorf("results of types %T, %T", results[0], results[1]))
	}
	if !k.receiver.Public.Equal(k.sender.Public) {
		return nil, wrap(p, "keygen", errors.New("parties disagree on the public key"))
	}
	if k.pub, err = mpsPublicKey(k.receiver.Public); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	return k, nil
}

func (p *doernerProtocol) Sign(key Key, digest []byte) (*Signature, error) {
	k, ok := key.(*doernerKey)
	if !ok || len(digest) != 32 {
		return nil, wrap(p, "sign", errors.New("bad key or digest"))
	}
	ids := mpsIDs(2)
	pools := newPools(2)
	defer tearDown(pools)
	sid, err := sessionID()
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	// As in the library's own test, both handlers are created as leaders.
	h0, err := protocol.NewTwoPartyHandler(doerner.SignReceiver(k.receiver, ids[0], ids[1], digest, pools[0]), sid, true)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	h1, err := protocol.NewTwoPartyHandler(doerner.SignSender(k.sender, ids[1], ids[0], digest, pools[1]), sid, true)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	results, bytes, err := runMPS(ids, []protocol.Handler{h0, h1}, p.timeout)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	// The receiver outputs the signature.
	sig, err := mpsSignature(results[0])
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig.Bytes = bytes
	return sig, nil
}

// newPools returns one worker pool per party: a multi-party-sig Pool must
// only be used from one goroutine (its doc), so parties cannot share one.
// Each pool has runtime.NumCPU workers, as in the library's example.
func newPools(n int) []*pool.Pool {
	pools := make([]*pool.Pool, n)
	for i := range pools {
		pools[i] = pool.NewPool(0)
	}
	return pools
}

func tearDown(pools []*pool.Pool) {
	for _, pl := range pools {
		pl.TearDown()
	}
}

func mpsPublicKey(pt curve.Point) (*secp256k1.PublicKey, error) {
	b, err := pt.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return secp256k1.ParsePubKey(b)
}

func mpsSignature(r any) (*Signature, error) {
	s, ok := r.(*ecdsa.Signature)
	if !ok {
		return nil, fmt.Errorf("result of type %T, want *ecdsa.Signature", r)
	}
	rb, err := s.R.XScalar().MarshalBinary()
	if err != nil {
		return nil, err
	}
	sb, err := s.S.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return sigFromBytes(rb, sb)
}

// runMPS runs multi-party-sig handlers to completion the way the library's
// internal/test network does (a loop per party that forwards what the
// handler emits and feeds it what it receives), except that every message
// is serialised with MarshalBinary and parsed back per recipient. It
// returns each handler's result, in the order of handlers, and the bytes
// delivered.
func runMPS(ids party.IDSlice, handlers []protocol.Handler, timeout time.Duration) ([]any, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	inbox := make(map[party.ID]chan *protocol.Message, len(ids))
	for _, id := range ids {
		inbox[id] = make(chan *protocol.Message, 64*len(ids)*len(ids))
	}
	var bytes atomic.Int64
	var failed atomic.Value
	fail := func(err error) {
		failed.CompareAndSwap(nil, err)
		cancel()
	}
	route := func(msg *protocol.Message) {
		b, err := msg.MarshalBinary()
		if err != nil {
			fail(err)
			return
		}
		for _, id := range ids {
			if !msg.IsFor(id) {
				continue
			}
			m := new(protocol.Message)
			if err := m.UnmarshalBinary(b); err != nil {
				fail(err)
				return
			}
			bytes.Add(int64(len(b)))
			select {
			case inbox[id] <- m:
			case <-ctx.Done():
				return
			}
		}
	}
	var wg sync.WaitGroup
	for i, h := range handlers {
		id := ids[i]
		wg.Go(func() {
			for {
				select {
				case msg, ok := <-h.Listen():
					if !ok {
						return
					}
					route(msg)
				case msg := <-inbox[id]:
					h.Accept(msg)
				case <-ctx.Done():
					h.Stop()
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, 0, err
	}
	if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("timed out after %s", timeout)
	}
	results := make([]any, len(handlers))
	for i, h := range handlers {
		r, err := h.Result()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", ids[i], err)
		}
		results[i] = r
	}
	return results, int(bytes.Load()), nil
}
