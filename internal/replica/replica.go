// Package replica replicates signed records between the nodes of a cluster,
// as shared/DESIGN.md ("Replication") describes: every state change is a
// record signed by whoever may make it; each node validates a record itself
// (through an Applier) before it stores it; a write succeeds once n−t+1
// nodes have stored it; and a node that was down catches up from its peers
// and validates everything it receives.
//
// Records are opaque bytes to this package, identified by the SHA-256 of
// those bytes (ID), and idempotent: a record already stored is
// acknowledged again without being applied twice. Each node keeps its own
// append-only log of the records it applied (store stream "replica/log"),
// in the order it applied them, so that a dependent record never precedes
// its parent in any node's log.
//
// Why n−t+1: any set of t signers then shares at least one node with every
// acknowledged write, so an acknowledged revocation is seen by at least one
// node of every signing set.
//
// # Peer protocol
//
// Two transport calls (see wire.go for the byte format):
//   - replica.push: the sender's record; the receiver applies it and answers
//     with its ID, or refuses with a reason. If it refuses it as invalid, it
//     first catches up from the sender and tries once more, so a node that
//     merely missed a parent record still accepts the child.
//   - replica.pull: "your log after position p, at most k records"; catch-up
//     keeps, per peer, the last position it processed (store namespace
//     "replica/cursor") and applies what it pulls in the peer's order,
//     skipping (and logging) records that fail validation, and keeping
//     those that only miss a dependency (ErrMissing; at most
//     MaxPendingPerPeer per peer, namespace "replica/pending") to apply
//     them again whenever records are applied. A round takes at most
//     MaxCatchUpBatches answers from a peer.
//
// Catch-up runs when Run starts, every Options.CatchUpInterval, and whenever
// a peer link comes back (the transport reports it reachable again).
//
// A malicious node can put anything in its own log, but it cannot make an
// honest node store a record that the honest node's Applier refuses.
package replica

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Store names used by the replica.
const (
	// LogStream is the store stream holding this node's replicated log.
	LogStream = "replica/log"
	nsIDs     = "replica/ids"     // hex(ID) → position in LogStream (8 bytes)
	nsCursor  = "replica/cursor"  // peer id → last position processed in its log (8 bytes)
	nsPending = "replica/pending" // peer id (5 digits) / hex(ID) → a record waiting for a dependency
)

// Bounds on catch-up and on records kept for a missing dependency.
const (
	// MaxPendingPerPeer bounds the records kept from one peer (pushed or
	// pulled) that wait for a dependency (ErrMissing). While a peer's
	// quota is full, catch-up from it stops at the next such record (and
	// resumes there in a later round) and its pushes of such records are
	// refused without being kept: a peer can fill only its own quota.
	MaxPendingPerPeer = 1024
	// MaxCatchUpBatches bounds the pull answers (of MaxBatch records) one
	// catch-up round takes from a peer, so a peer that keeps sending
	// cannot keep a round going; the next round resumes at the cursor.
	MaxCatchUpBatches = 16
	// pushCatchUpBatches bounds the catch-up a pushed record that fails
	// validation triggers from its sender before it is tried again.
	pushCatchUpBatches = 2
	// runRounds bounds the rounds Run takes from a peer in a row, per
	// trigger (start, tick, link up).
	runRounds = 8
)

// Defaults for Options' zero fields.
const (
	DefaultPushTimeout     = 10 * time.Second
	DefaultCatchUpInterval = 30 * time.Second
	DefaultLinkPoll        = 500 * time.Millisecond
)

// ID identifies a record: the SHA-256 of its bytes.
type ID [32]byte

// RecordID returns rec's ID.
func RecordID(rec []byte) ID { return sha256.Sum256(rec) }

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 bytes in hex, for messages.
func (id ID) Short() string { return hex.EncodeToString(id[:8]) }

// Applier validates records and applies their effect to the node's state.
type Applier interface {
	// Apply validates rec against the current state (read through tx) and
	// writes its effect through tx. Applying a record already applied is a
	// no-op returning nil, or an error wrapping ErrDuplicate when the
	// Applier identifies records by their content rather than their bytes
	// and rec is another encoding of an applied one (the replica then
	// drops rec). A record that fails validation returns an error
	// wrapping ErrInvalid and must write nothing. Apply may be run again
	// for the same record if the store retries the transaction, so it must
	// have no effect outside tx.
	Apply(ctx context.Context, tx store.Ops, rec []byte) error
}

// Transport is what the replica needs from the peer transport;
// *transport.Transport implements it.
type Transport interface {
	Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error)
	Handle(kind string, h transport.Handler)
	Peers() []transport.PeerStatus
}

// Options configure New.
type Options struct {
	Transport Transport    // required
	Store     store.Store  // required, migrated
	Config    *config.Node // required: this node's id, threshold and peers
	// Applier validates and applies records (required). A node whose
	// services own several record kinds passes one that dispatches by kind.
	Applier Applier
	Logger  *slog.Logger // nil discards

	PushTimeout     time.Duration // bound on pushing one record to the peers; default 10s
	CatchUpInterval time.Duration // periodic catch-up from every peer; default 30s
	LinkPoll        time.Duration // how often link state is checked to catch up when a link returns; default 500ms
}

// Replica is one node's end of record replication. Its methods are safe for
// concurrent use.
type Replica struct {
	tr    Transport
	st    store.Store
	self  uint16
	peers []uint16
	n     int
	need  int // n − t + 1
	log   *slog.Logger
	opts  Options

	applier Applier

	catchMu   map[uint16]*sync.Mutex // one catch-up per peer at a time
	pendingMu sync.Mutex             // one retry of pending records at a time
	kickMu    sync.Mutex             // guards kicked and kickRun
	kicked    bool                   // a background retry is wanted
	kickRun   bool                   // a background retry is running

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed, ran and wg.Add against Close's wg.Wait
	closed bool
	ran    bool
}

// spawn runs f in a goroutine that Close waits for; it reports false (and
// does not run f) once Close has been called.
func (r *Replica) spawn(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Go(f)
	return true
}

// New builds a replica and registers its handlers on the transport. Call
// Run to start catch-up, and Close when done.
func New(opts Options) (*Replica, error) {
	if opts.Transport == nil || opts.Store == nil || opts.Config == nil || opts.Applier == nil {
		return nil, errors.New("replica: Options.Transport, Store, Config and Applier are required")
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.PushTimeout <= 0 {
		opts.PushTimeout = DefaultPushTimeout
	}
	if opts.CatchUpInterval <= 0 {
		opts.CatchUpInterval = DefaultCatchUpInterval
	}
	if opts.LinkPoll <= 0 {
		opts.LinkPoll = DefaultLinkPoll
	}
	r := &Replica{
		tr: opts.Transport, st: opts.Store, self: cfg.ID,
		n: cfg.N(), need: cfg.N() - cfg.Threshold + 1,
		log: opts.Logger, opts: opts, applier: opts.Applier,
		catchMu: map[uint16]*sync.Mutex{},
	}
	for _, p := range cfg.Peers {
		r.peers = append(r.peers, p.ID)
		r.catchMu[p.ID] = new(sync.Mutex)
	}
	slices.Sort(r.peers)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.tr.Handle(kindPush, r.handlePush)
	r.tr.Handle(kindPull, r.handlePull)
	return r, nil
}

// Quorum returns n−t+1, the number of nodes (this one included) that must
// store a record for Submit to succeed.
func (r *Replica) Quorum() int { return r.need }

// Close stops catch-up and background pushes and waits for them. It does
// not close the transport or the store.
func (r *Replica) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// apply applies rec in one store transaction: unless its ID is already
// known, it runs the Applier, appends rec to LogStream and records its ID;
// extra, if not nil, runs in the same transaction (catch-up's cursor).
// It reports whether rec was new.
func (r *Replica) apply(ctx context.Context, rec []byte, extra func(tx store.Ops) error) (bool, error) {
	a := r.applier
	id := RecordID(rec)
	key := id.String()
	var fresh bool
	err := r.st.Update(ctx, func(tx store.Ops) error {
		fresh = false
		_, err := tx.Get(ctx, nsIDs, key)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			if err := a.Apply(ctx, tx, rec); errors.Is(err, ErrDuplicate) {
				// Another copy of an applied change: acknowledged, not
				// stored (nor, then, served to peers in catch-up).
				break
			} else if err != nil {
				return err
			}
			pos, err := tx.Append(ctx, LogStream, rec)
			if err != nil {
				return err
			}
			if err := tx.Put(ctx, nsIDs, key, binary.BigEndian.AppendUint64(nil, uint64(pos))); err != nil {
				return err
			}
			fresh = true
		default:
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	return fresh, err
}

// Submit applies rec locally (an invalid record returns an error wrapping
// ErrInvalid and is sent nowhere), sends it to every peer, and returns nil
// once n−t+1 nodes, this one included, have stored it. Otherwise it
// returns a *QuorumError naming each peer that refused it (with its
// reason) or was down, as soon as the quorum can no longer be reached, or
// ctx's error. Peers that have not answered when Submit returns still get
// the record in the background (bounded by Options.PushTimeout).
//
// Submitting a record that is already stored is allowed: it is not applied
// again, but is pushed again, so a caller may retry a Submit that failed.
// A record that did not reach the quorum stays in this node's log (and in
// those of the peers that took it) and reaches the others through their
// catch-up: a failed Submit means "not acknowledged", not "undone".
func (r *Replica) Submit(ctx context.Context, rec []byte) error {
	if err := checkRecord(rec); err != nil {
		return err
	}
	if fresh, err := r.apply(ctx, rec, nil); err != nil {
		return fmt.Errorf("replica: applying record locally: %w", err)
	} else if fresh {
		r.kickPending()
	}
	id := RecordID(rec)
	body := encodePush(rec)
	type result struct {
		peer uint16
		err  error
	}
	results := make(chan result, len(r.peers))
	pctx, pcancel := context.WithTimeout(r.ctx, r.opts.PushTimeout)
	var pushes sync.WaitGroup
	for _, p := range r.peers {
		pushes.Add(1)
		if !r.spawn(func() {
			defer pushes.Done()
			results <- result{p, r.push(pctx, p, body, id)}
		}) {
			pushes.Done()
			results <- result{p, errors.New("replica: closed")}
		}
	}
	if !r.spawn(func() { pushes.Wait(); pcancel() }) {
		pcancel()
	}

	stored := 1
	var fails []PeerFailure
	for stored < r.need {
		if len(r.peers)+1-len(fails) < r.need {
			slices.SortFunc(fails, func(a, b PeerFailure) int { return int(a.Peer) - int(b.Peer) })
			return &QuorumError{ID: id, Stored: stored, Need: r.need, N: r.n, Failures: fails}
		}
		select {
		case res := <-results:
			if res.err == nil {
				stored++
				continue
			}
			f := PeerFailure{Peer: res.peer, Down: true, Reason: res.err.Error()}
			var re *transport.RemoteError
			if errors.As(res.err, &re) {
				f.Down, f.Reason = false, re.Message
			}
			fails = append(fails, f)
			r.log.Warn("peer did not store record", "record", id.Short(), "peer", res.peer, "down", f.Down, "reason", f.Reason)
		case <-ctx.Done():
			return fmt.Errorf("replica: record %s stored on %d of %d nodes, %d needed: %w", id.Short(), stored, r.n, r.need, ctx.Err())
		}
	}
	return nil
}

// push sends one record to peer and checks its acknowledgement.
func (r *Replica) push(ctx context.Context, peer uint16, body []byte, id ID) error {
	resp, err := r.tr.Call(ctx, peer, kindPush, body)
	if err != nil {
		return err
	}
	got, err := decodeAck(resp)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("replica: peer %d acknowledged record %s instead of %s", peer, got.Short(), id.Short())
	}
	return nil
}

// handlePush answers replica.push. The error text goes back to the sender.
func (r *Replica) handlePush(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	rec, err := decodePush(body)
	if err != nil {
		return nil, err
	}
	id := RecordID(rec)
	fresh, err := r.apply(ctx, rec, nil)
	if errors.Is(err, ErrInvalid) {
		// Perhaps we missed the record this one builds on: catch up from
		// the sender, which has applied it, and try once more.
		if _, cerr := r.catchUpRound(ctx, from, pushCatchUpBatches); cerr != nil {
			r.log.Debug("catch-up before retrying a pushed record failed", "peer", from, "err", cerr)
		}
		fresh, err = r.apply(ctx, rec, nil)
	}
	if errors.Is(err, ErrMissing) {
		// Still waiting for what it builds on: keep it to try again.
		r.keepPending(ctx, from, rec)
	}
	switch {
	case err == nil:
		if fresh {
			r.kickPending()
		}
		return encodeAck(id), nil
	case errors.Is(err, ErrInvalid):
		r.log.Warn("refused record from peer", "peer", from, "record", id.Short(), "err", err)
		return nil, fmt.Errorf("replica: refused record %s: %w", id.Short(), err)
	default:
		r.log.Error("storing record from peer", "peer", from, "record", id.Short(), "err", err)
		return nil, errors.New("replica: internal error storing the record")
	}
}

// handlePull answers replica.pull with this node's log after a position.
func (r *Replica) handlePull(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	after, limit, err := decodePull(body)
	if err != nil {
		return nil, err
	}
	es, err := r.Log(ctx, after, limit)
	if err != nil {
		r.log.Error("reading log for peer", "peer", from, "err", err)
		return nil, errors.New("replica: internal error reading the log")
	}
	return encodeBatch(es), nil
}

// Log returns this node's replicated log after position after, at most
// limit entries (limit <= 0: MaxBatch).
func (r *Replica) Log(ctx context.Context, after int64, limit int) ([]Entry, error) {
	if limit <= 0 || limit > MaxBatch {
		limit = MaxBatch
	}
	rs, err := r.st.Records(ctx, LogStream, after, limit)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	es := make([]Entry, len(rs))
	for i, rec := range rs {
		es[i] = Entry{Pos: rec.ID, Data: rec.Data}
	}
	return es, nil
}

// Has reports whether the record with the given ID is stored here.
func (r *Replica) Has(ctx context.Context, id ID) (bool, error) {
	_, err := r.st.Get(ctx, nsIDs, id.String())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("replica: %w", err)
	}
}

// CatchUp runs one catch-up round from every peer: it pulls the records
// of the peer's log after the last position seen from it (at most
// MaxCatchUpBatches answers of MaxBatch records; the next call resumes
// there) and applies them in the peer's order; records that fail
// validation are skipped and logged, and those missing a dependency are
// kept and retried (ErrMissing). It returns an error naming each peer it
// could not catch up from.
func (r *Replica) CatchUp(ctx context.Context) error {
	errs := make([]error, len(r.peers))
	var wg sync.WaitGroup
	for i, p := range r.peers {
		wg.Go(func() { errs[i] = r.catchUpPeer(ctx, p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Replica) cursor(ctx context.Context, peer uint16) (int64, error) {
	v, err := r.st.Get(ctx, nsCursor, strconv.Itoa(int(peer)))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fmt.Errorf("cursor of peer %d is %d bytes", peer, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func putCursor(ctx context.Context, tx store.Ops, peer uint16, pos int64) error {
	return tx.Put(ctx, nsCursor, strconv.Itoa(int(peer)), binary.BigEndian.AppendUint64(nil, uint64(pos)))
}

// catchUpPeer runs one catch-up round from peer: catchUpRound with
// MaxCatchUpBatches.
func (r *Replica) catchUpPeer(ctx context.Context, peer uint16) error {
	_, err := r.catchUpRound(ctx, peer, MaxCatchUpBatches)
	return err
}

// catchUpRound pulls and applies peer's log from our cursor, at most
// batches answers of MaxBatch records, and reports whether the peer may
// have more (the round ended at its bound).
func (r *Replica) catchUpRound(ctx context.Context, peer uint16, batches int) (more bool, err error) {
	mu := r.catchMu[peer]
	if mu == nil {
		return false, fmt.Errorf("replica: peer %d is not configured", peer)
	}
	mu.Lock()
	defer mu.Unlock()
	after, err := r.cursor(ctx, peer)
	if err != nil {
		return false, fmt.Errorf("replica: catch-up from peer %d: %w", peer, err)
	}
	applied, skipped, kept := 0, 0, 0
	defer func() {
		if applied+skipped+kept > 0 {
			r.log.Info("caught up from peer", "peer", peer, "applied", applied, "skipped", skipped, "kept", kept, "position", after)
		}
		if applied > 0 {
			r.retryPending(ctx)
		}
	}()
	for range batches {
		resp, err := r.tr.Call(ctx, peer, kindPull, encodePull(after, MaxBatch))
		if err != nil {
			return false, fmt.Errorf("replica: catch-up from peer %d: %w", peer, err)
		}
		es, err := decodeBatch(resp, after, MaxBatch)
		if err != nil {
			return false, fmt.Errorf("replica: catch-up from peer %d: %w", peer, err)
		}
		if len(es) == 0 {
			return false, nil
		}
		more = len(es) == MaxBatch
		for _, e := range es {
			setCursor := func(tx store.Ops) error { return putCursor(ctx, tx, peer, e.Pos) }
			fresh, err := r.apply(ctx, e.Data, setCursor)
			if errors.Is(err, ErrMissing) {
				if !r.keepPending(ctx, peer, e.Data) {
					return false, nil // quota full: resume here in a later round
				}
				kept++
				err = r.st.Update(ctx, setCursor)
			} else if errors.Is(err, ErrInvalid) {
				skipped++
				r.log.Warn("skipping invalid record from peer's log", "peer", peer, "position", e.Pos, "record", RecordID(e.Data).Short(), "err", err)
				err = r.st.Update(ctx, setCursor)
			}
			if err != nil {
				return false, fmt.Errorf("replica: catch-up from peer %d at position %d: %w", peer, e.Pos, err)
			}
			if fresh {
				applied++
			}
			after = e.Pos
		}
	}
	return more, nil // bounded round: the next one resumes at the cursor
}

func pendingKey(peer uint16, id ID) string { return fmt.Sprintf("%05d/%s", peer, id) }

// keepPending keeps rec, received from peer and refused for a missing
// dependency, to be applied again by retryPending. It reports false if
// peer's quota (MaxPendingPerPeer) is full.
func (r *Replica) keepPending(ctx context.Context, peer uint16, rec []byte) bool {
	prefix := fmt.Sprintf("%05d/", peer)
	es, err := r.st.List(ctx, nsPending, prefix, MaxPendingPerPeer)
	if err != nil {
		r.log.Error("reading pending records", "err", err)
		return false
	}
	key := pendingKey(peer, RecordID(rec))
	for _, e := range es {
		if e.Key == key {
			return true
		}
	}
	if len(es) >= MaxPendingPerPeer {
		r.log.Warn("peer's pending records at their bound", "peer", peer, "bound", MaxPendingPerPeer)
		return false
	}
	if err := r.st.Put(ctx, nsPending, key, rec); err != nil {
		r.log.Error("keeping a pending record", "err", err)
		return false
	}
	return true
}

// Pending returns how many records wait for a dependency.
func (r *Replica) Pending(ctx context.Context) (int, error) {
	es, err := r.st.List(ctx, nsPending, "", 0)
	return len(es), err
}

// kickPending runs retryPending in the background, off the path of the
// write that made it worth trying: one run at a time, and kicks that
// arrive while one runs are served by one more run.
func (r *Replica) kickPending() {
	r.kickMu.Lock()
	defer r.kickMu.Unlock()
	r.kicked = true
	if r.kickRun {
		return
	}
	r.kickRun = r.spawn(func() {
		for {
			r.kickMu.Lock()
			if !r.kicked || r.ctx.Err() != nil {
				r.kickRun = false
				r.kickMu.Unlock()
				return
			}
			r.kicked = false
			r.kickMu.Unlock()
			r.retryPending(r.ctx)
		}
	})
}

// retryPending applies the kept records again until none more applies:
// each that applies (and so enters the log) or that is now invalid for
// another reason is dropped; those still missing a dependency stay.
func (r *Replica) retryPending(ctx context.Context) {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	for {
		es, err := r.st.List(ctx, nsPending, "", 0)
		if err != nil || len(es) == 0 {
			return
		}
		progress := false
		for _, e := range es {
			drop := func(tx store.Ops) error { return tx.Delete(ctx, nsPending, e.Key) }
			_, err := r.apply(ctx, e.Value, drop)
			switch {
			case err == nil:
				progress = true
			case errors.Is(err, ErrMissing):
			case errors.Is(err, ErrInvalid):
				r.log.Warn("dropping a pending record", "record", RecordID(e.Value).Short(), "err", err)
				if err := r.st.Update(ctx, drop); err != nil {
					return
				}
			default:
				r.log.Error("retrying a pending record", "record", RecordID(e.Value).Short(), "err", err)
				return
			}
		}
		if !progress {
			return
		}
	}
}

// Run catches up from every peer at once, then every CatchUpInterval, and
// from a peer whenever its link comes back, until ctx ends or Close is
// called. It returns nil then. Run may be called once.
func (r *Replica) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.ran || r.closed {
		r.mu.Unlock()
		return errors.New("replica: Run called twice or after Close")
	}
	r.ran = true
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()

	var mu sync.Mutex
	running := map[uint16]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	// start catches up from peer in the background unless that is already
	// under way.
	start := func(peer uint16, why string) {
		mu.Lock()
		defer mu.Unlock()
		if running[peer] {
			return
		}
		running[peer] = true
		wg.Go(func() {
			defer func() { mu.Lock(); running[peer] = false; mu.Unlock() }()
			// Bounded rounds, one after the other while the peer has
			// more (the per-peer lock is free between them), up to
			// runRounds; a peer that keeps sending waits for the next
			// trigger.
			for range runRounds {
				more, err := r.catchUpRound(ctx, peer, MaxCatchUpBatches)
				if err != nil && ctx.Err() == nil {
					r.log.Debug("catch-up failed", "peer", peer, "why", why, "err", err)
				}
				if !more || err != nil || ctx.Err() != nil {
					break
				}
			}
		})
	}
	for _, p := range r.peers {
		start(p, "start")
	}
	up := map[uint16]bool{}
	for _, ps := range r.tr.Peers() {
		up[ps.ID] = ps.Reachable
	}
	tick := time.NewTicker(r.opts.CatchUpInterval)
	defer tick.Stop()
	poll := time.NewTicker(r.opts.LinkPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			for _, p := range r.peers {
				start(p, "periodic")
			}
		case <-poll.C:
			for _, ps := range r.tr.Peers() {
				if ps.Reachable && !up[ps.ID] {
					start(ps.ID, "link up")
				}
				up[ps.ID] = ps.Reachable
			}
		}
	}
}
