//go:build keymesh_adversary

package adversary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/transport"
	"github.com/keymesh/keymesh/internal/wallet"
)

// Evil is a node of a Cluster played as a malicious one: a real node (its
// services still answer its peers honestly) that the test drives around
// them, as a malicious operator's modified build would. See the package
// doc for the catalogue; every method is safe for concurrent use.
type Evil struct {
	c  *Cluster
	id uint16

	mu        sync.Mutex
	rules     []*ruleEntry
	handlers  map[string]transport.Handler // peer RPC answers replaced by Handle
	installed *transport.Transport
}

// ID returns the node's id.
func (e *Evil) ID() uint16 { return e.id }

// Node returns the node as it runs now.
func (e *Evil) Node() *node.Node { return e.c.Node(e.id) }

// install routes the outgoing round messages of n's transport through the
// rules. It runs before n serves (Cluster.start) or when Evil is first
// asked for; the hook then stays (a node without rules sends unchanged).
func (e *Evil) install(n *node.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.installed == n.Transport() {
		return
	}
	e.installed = n.Transport()
	n.Transport().TestingOnlyAlterOutgoing(e.alter)
	for kind, h := range e.handlers { // after the services registered theirs
		n.Transport().Handle(kind, h)
	}
}

// Handle makes this node answer peer RPCs of kind with h instead of its
// service's handler, from now on and after a Restart: a node that lies in
// its answers, for example one that acknowledges an approval reservation
// (auth.KindReserve) without recording it, or claims to have stored what
// it did not.
func (e *Evil) Handle(kind string, h transport.Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.handlers == nil {
		e.handlers = map[string]transport.Handler{}
	}
	e.handlers[kind] = h
	if e.installed != nil {
		e.installed.Handle(kind, h)
	}
}

// Call sends one peer RPC of kind with body to peer to, as this node, and
// returns the peer's answer: whatever a modified build could send.
func (e *Evil) Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	return e.Node().Transport().Call(ctx, to, kind, body)
}

// SendRaw is Call.
func (e *Evil) SendRaw(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	return e.Call(ctx, to, kind, body)
}

// Replay sends the same call times times to peer to, one after the other,
// and returns each call's error (nil for an answer).
func (e *Evil) Replay(ctx context.Context, to uint16, kind string, body []byte, times int) []error {
	errs := make([]error, times)
	for i := range errs {
		_, errs[i] = e.Call(ctx, to, kind, body)
	}
	return errs
}

// Share returns this node's own share of the key at addr: the live share
// its wallet service holds. A malicious node has its share; it must not
// be able to learn anyone else's.
func (e *Evil) Share(ctx context.Context, addr common.Address) (*dkls23.Share, error) {
	w := e.Node().TestingOnlyWallet()
	if w == nil {
		return nil, errors.New("adversary: the node runs no wallet service")
	}
	return w.TestingOnlyShare(ctx, addr)
}

// SignInvitation is the body of a signing invitation (wallet.KindSign) for
// req, which a client sent to this node as its gateway, with a nonce and
// request id of the attacker's choosing and the signer set signers (this
// node and the co-signers, any order).
func (e *Evil) SignInvitation(req *Request, request [16]byte, nonce [32]byte, signers ...uint16) []byte {
	ss := slices.Clone(signers)
	slices.Sort(ss)
	return wallet.EncodeSignInvite(req.Method, req.Params, req.Proofs, request, nonce, slices.Compact(ss))
}

// KeygenInvitation is the body of a key-generation invitation
// (wallet.KindKeygen) for the user's account, approved by proofs
// (User.ApproveCreate), with a nonce and request id of the attacker's
// choosing.
func (e *Evil) KeygenInvitation(u *User, proofs string, request [16]byte, nonce [32]byte) []byte {
	return wallet.EncodeKeygenInvite(u.Scope, u.Account, proofs, request, nonce)
}

// Run is one session the attacker runs while it invites peers to theirs.
type Run struct {
	// Session is the attacker's own session (nil if it ran none).
	Session *round.Session
	// Result and Err are its outcome.
	Result any
	Err    error
	// Answers and Errs are the invited peers' answers to the invitation
	// (an invited peer answers once its own session ended).
	Answers map[uint16][]byte
	Errs    map[uint16]error

	done chan struct{}
}

// Wait waits until the session and every invitation have ended, and
// returns r.
func (r *Run) Wait() *Run {
	<-r.done
	return r
}

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// PeerErr returns peer's answer error (nil: it answered).
func (r *Run) PeerErr(peer uint16) error {
	<-r.done
	return r.Errs[peer]
}

// Start sends body as a call of kind to each peer in to, concurrently, and
// runs s (if not nil) over this node's own transport at the same time,
// without the node's own defences (its session record, its auth): the
// attacker's build skips them. As an honest gateway does, it ends its own
// session at once when an invited peer answers with an error (a refusal
// or a failed session), instead of waiting for its timeout. It returns at
// once; Wait for the outcome. The calls and the session end with ctx.
func (e *Evil) Start(ctx context.Context, s *round.Session, kind string, body []byte, to ...uint16) *Run {
	r := &Run{Session: s, Answers: map[uint16][]byte{}, Errs: map[uint16]error{}, done: make(chan struct{})}
	tr := e.Node().Transport()
	sctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range to {
		wg.Go(func() {
			out, err := tr.Call(ctx, p, kind, body)
			mu.Lock()
			r.Answers[p], r.Errs[p] = out, err
			mu.Unlock()
			if err != nil {
				cancel()
			}
		})
	}
	if s != nil {
		wg.Go(func() { r.Result, r.Err = tr.RunSession(sctx, s) })
	}
	go func() {
		wg.Wait()
		cancel()
		close(r.done)
	}()
	return r
}

// RunSession is Start and Wait.
func (e *Evil) RunSession(ctx context.Context, s *round.Session, kind string, body []byte, to ...uint16) *Run {
	return e.Start(ctx, s, kind, body, to...).Wait()
}

// OpenSessions starts k runs at once: next(i) returns the i-th session,
// invitation and invitees (see Start), and may install rules for it. The
// sessions stay open for as long as those rules hold them (Hold).
func (e *Evil) OpenSessions(ctx context.Context, k int, next func(i int) (s *round.Session, kind string, body []byte, to []uint16)) []*Run {
	runs := []*Run{}
	for i := range k {
		s, kind, body, to := next(i)
		runs = append(runs, e.Start(ctx, s, kind, body, to...))
	}
	return runs
}

// A Rule may change a round message this node is about to send to peer
// to (m is a private copy per recipient: Payload, Echo and the header may
// all be changed). It may block, which holds that session's sends.
type Rule func(to uint16, m *round.Message)

type ruleEntry struct{ r Rule }

// Alter installs rule for every round message this node sends from now
// on, after the rules already installed, and returns a function that
// removes it. Rules survive a Restart of the node.
func (e *Evil) Alter(rule Rule) (remove func()) {
	ent := &ruleEntry{r: rule}
	e.mu.Lock()
	e.rules = append(e.rules, ent)
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.rules = slices.DeleteFunc(e.rules, func(x *ruleEntry) bool { return x == ent })
		e.mu.Unlock()
	}
}

func (e *Evil) alter(to uint16, m *round.Message) {
	e.mu.Lock()
	rules := slices.Clone(e.rules)
	e.mu.Unlock()
	for _, ent := range rules {
		ent.r(to, m)
	}
}

// A Match selects the messages a Rule acts on.
type Match func(to uint16, m *round.Message) bool

// InSession matches the messages of session sid (its base id, as in every
// message header).
func InSession(sid round.SessionID) Match {
	return func(_ uint16, m *round.Message) bool { return m.SessionID == sid }
}

// To matches the messages sent to peer.
func To(peer uint16) Match {
	return func(to uint16, _ *round.Message) bool { return to == peer }
}

// Direct matches point-to-point messages whose payload is n bytes long (n
// < 0: any length), such as an rvole first message (rvole.Msg1Len), which
// carries the OT-extension columns.
func Direct(n int) Match {
	return func(_ uint16, m *round.Message) bool {
		return !m.IsBroadcast() && (n < 0 || len(m.Payload) == n)
	}
}

// FromRound matches the messages of engine round r and later.
func FromRound(r uint16) Match {
	return func(_ uint16, m *round.Message) bool { return m.Round >= r }
}

// All matches what every one of ms matches.
func All(ms ...Match) Match {
	return func(to uint16, m *round.Message) bool {
		for _, x := range ms {
			if !x(to, m) {
				return false
			}
		}
		return true
	}
}

// FlipBit flips bit (0–7) of byte at (negative: from the end) of the
// payload of every message that match selects. A payload too short is left
// alone.
func FlipBit(match Match, at, bit int) Rule {
	return func(to uint16, m *round.Message) {
		if !match(to, m) {
			return
		}
		i := at
		if i < 0 {
			i += len(m.Payload)
		}
		if i >= 0 && i < len(m.Payload) {
			m.Payload[i] ^= 1 << (bit & 7)
		}
	}
}

// Hold blocks every message that match selects until release is closed
// (or a minute has passed, so that a failed test cannot hang), which holds
// its session open on this side. held, if not nil, is called once per
// session the first time one of its messages is held.
func Hold(match Match, release <-chan struct{}, held func(sid round.SessionID)) Rule {
	var mu sync.Mutex
	seen := map[round.SessionID]bool{}
	return func(to uint16, m *round.Message) {
		if !match(to, m) {
			return
		}
		mu.Lock()
		first := !seen[m.SessionID]
		seen[m.SessionID] = true
		mu.Unlock()
		if first && held != nil {
			held(m.SessionID)
		}
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
	}
}

// String names the node.
func (e *Evil) String() string { return fmt.Sprintf("evil node %d", e.id) }
