package uid

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/oprf/dkg"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/transport"
)

// standInAuth is a stand-in auth.Authorizer for this package's own tests,
// named as such: it accepts exactly the proofs "ok:<hex of op.Hash>" and
// records the operations it was asked about. The real authorisation runs
// in internal/adversary's TestUID on a real cluster.
type standInAuth struct{ ops []auth.Operation }

func okProofs(h [32]byte) string { return "ok:" + hex.EncodeToString(h[:]) }

func (a *standInAuth) Authorize(_ context.Context, op auth.Operation, proofs string) (auth.Principal, error) {
	a.ops = append(a.ops, op)
	if proofs != okProofs(op.Hash) {
		return auth.Principal{}, api.Errorf(api.CodeAuthWrongOperation, "stand-in: no approval for this operation")
	}
	return auth.Principal{Scope: op.Scope, Account: op.Account}, nil
}

type noPeers struct{}

func (noPeers) Call(context.Context, uint16, string, []byte) ([]byte, error) {
	return nil, errors.New("no peers")
}
func (noPeers) Peers() []transport.PeerStatus { return nil }

// sealer is a stand-in enclave: it prefixes the label and flips every bit.
type sealer struct{}

func (sealer) Seal(p []byte, label string) ([]byte, error) {
	out := []byte(label + "|")
	for _, c := range p {
		out = append(out, ^c)
	}
	return out, nil
}

func (sealer) Unseal(b []byte, label string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(label+"|"))
	if !ok {
		return nil, errors.New("sealed for another label")
	}
	out := make([]byte, len(rest))
	for i, c := range rest {
		out[i] = ^c
	}
	return out, nil
}

func newTestService(t testing.TB, self uint16, o func(*Options)) (*Service, *standInAuth) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := &standInAuth{}
	opts := Options{Self: self, Threshold: 2, Nodes: []uint16{1, 2, 3}, Transport: noPeers{}, Store: st, Auth: a, Sealer: sealer{},
		RunSession: func(context.Context, string, *round.Session) (any, error) { return nil, errors.New("no sessions here") }}
	if o != nil {
		o(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// keygen runs a 2-of-3 key generation in this process and returns the
// shares by node id.
func keygen(t testing.TB) map[uint16]*oprf.KeyShare {
	t.Helper()
	ss, err := dkg.NewKeygenSessions([]round.PartyID{1, 2, 3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	res := mpctest.Run(ss, nil, 1)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[uint16]*oprf.KeyShare{}
	for id, o := range res.Outputs {
		out[uint16(id)] = o.(*oprf.KeyShare)
	}
	return out
}

// TestShareStoredOnceSealed: a share is stored sealed (no plaintext share
// bytes in the store), read back after a restart, and a second key for
// the same scope is refused and changes nothing.
func TestShareStoredOnceSealed(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, 1, nil)
	a, b := keygen(t), keygen(t)
	if err := s.save(ctx, sc1, a[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.save(ctx, sc1, b[1]); !errors.Is(err, errKeyExists) {
		t.Fatalf("second key: %v", err)
	}
	raw, _ := a[1].MarshalBinary()
	stored, err := s.st.Get(ctx, nsShare, sc1)
	if err != nil || bytes.Contains(stored, raw[3:35]) || !bytes.HasPrefix(stored, []byte("uid/share/"+sc1+"|")) {
		t.Fatalf("stored share is not sealed (err %v)", err)
	}
	want, err := oprf.ParseKeyShare(raw)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if _, err := s.share(ctx, sc1); !errors.Is(err, errStopped) {
		t.Fatalf("share after Stop: %v", err)
	}
	s, _ = newTestService(t, 1, func(o *Options) { o.Store = s.st }) // a restart
	got, err := s.share(ctx, sc1)
	if err != nil || got == nil || !got.Equal(want) {
		t.Fatalf("share after restart: %v %v", got, err)
	}
	if got, err := s.share(ctx, sc2); got != nil || err != nil {
		t.Fatalf("unknown scope: %v %v", got, err)
	}
	// A share stored for another node is refused.
	s2, _ := newTestService(t, 2, func(o *Options) { o.Store = s.st })
	if _, err := s2.share(ctx, sc1); err == nil {
		t.Fatal("node 2 used node 1's share")
	}
}

// TestHandleEvaluate: a peer evaluates only what the approval binds (scope,
// account, blinded element), each time asking auth itself with the
// gateway's request id; the partial verifies against the public key; bad
// bodies and elements are refused; the scope's rate applies.
func TestHandleEvaluate(t *testing.T) {
	ctx := context.Background()
	s, a := newTestService(t, 2, func(o *Options) { o.Rate, o.Burst = 0.001, 2 })
	shares := keygen(t)
	if err := s.save(ctx, sc1, shares[2]); err != nil {
		t.Fatal(err)
	}
	_, req, err := oprf.BlindScoped(sc1, []byte("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	bl, _ := req.MarshalBinary()
	inv := api.UIDEvaluateInvite{Scope: sc1, Account: "alice", Request: [16]byte{7}}
	copy(inv.Blinded[:], bl)
	h := api.UIDOperationHash(api.MethodUIDEvaluate, sc1, bl)

	refuse := func(name string, m api.UIDEvaluateInvite, body []byte) {
		t.Helper()
		if body == nil {
			body = m.Marshal()
		}
		if out, err := s.handleEvaluate(ctx, 1, body); err == nil || out != nil {
			t.Errorf("%s: evaluated", name)
		}
	}
	bad := inv
	bad.Proofs = "none"
	refuse("no approval", bad, nil)
	other := inv
	other.Proofs = okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, sc1, make([]byte, 33)))
	refuse("approval of another element", other, nil)
	scoped := inv
	scoped.Scope = sc2
	scoped.Proofs = okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, sc2, bl))
	refuse("scope without a key", scoped, nil)
	ident := inv
	ident.Blinded = [33]byte{1}
	ident.Proofs = okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, sc1, ident.Blinded[:]))
	refuse("identity element", ident, nil)
	ok := inv
	ok.Proofs = okProofs(h)
	refuse("trailing byte", ok, append(ok.Marshal(), 0))

	for i := range 2 {
		out, err := s.handleEvaluate(ctx, 1, ok.Marshal())
		if err != nil {
			t.Fatalf("evaluation %d: %v", i, err)
		}
		pt, err := oprf.ParsePartial(out)
		if err != nil || pt.ID() != 2 {
			t.Fatalf("partial: %v", err)
		}
		if err := pt.Verify(shares[1].Public(), req); err != nil {
			t.Fatalf("partial does not verify: %v", err)
		}
	}
	last := a.ops[len(a.ops)-1]
	if last.Method != api.MethodUIDEvaluate || last.Hash != h || last.Request != inv.Request || last.Scope != sc1 || last.Account != "alice" {
		t.Fatalf("auth was asked about %+v", last)
	}
	_, err = s.handleEvaluate(ctx, 1, ok.Marshal())
	if err == nil || !strings.Contains(err.Error(), "rate") && !strings.Contains(err.Error(), "-32060") {
		t.Fatalf("third evaluation over a burst of 2: %v", err)
	}
}

// TestDeveloperApproval: key creation needs a developer-signed approval
// bound to the operation; a user's approval, or a developer's for another
// account or scope, is not one.
func TestDeveloperApproval(t *testing.T) {
	dev, _ := client.GenerateKey("ed25519")
	user, _ := client.GenerateKey("p256")
	op := createOp(sc1, "owner", [16]byte{1})
	cop := client.Operation{Scope: sc1, Account: "owner", Method: op.Method, Hash: op.Hash}
	devP, err := client.DeveloperSigner(dev, sc1).Sign(cop)
	if err != nil {
		t.Fatal(err)
	}
	userP, _ := client.UserKeySigner(user, sc1, "owner").Sign(cop)
	otherAcct := cop
	otherAcct.Account = "mallory"
	devOther, _ := client.DeveloperSigner(dev, sc1).Sign(otherAcct)
	evalOp := cop
	evalOp.Method, evalOp.Hash = api.MethodUIDEvaluate, api.UIDOperationHash(api.MethodUIDEvaluate, sc1, nil)
	devEval, _ := client.DeveloperSigner(dev, sc1).Sign(evalOp)
	for name, c := range map[string]struct {
		proofs string
		want   bool
	}{
		"developer":                {client.Proofs(devP), true},
		"user and developer":       {client.Proofs(userP, devP), true},
		"user":                     {client.Proofs(userP), false},
		"developer, other account": {client.Proofs(userP, devOther), false},
		"developer, other method":  {client.Proofs(devEval), false},
		"garbage":                  {"!!", false},
	} {
		if got := hasDeveloperApproval(c.proofs, op); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

// TestCreateKeyChecks: the gateway refuses a scope it holds a key for, and
// a cluster with a node down, before it asks auth.
func TestCreateKeyChecks(t *testing.T) {
	ctx := context.Background()
	s, a := newTestService(t, 1, nil)
	var ae *api.Error
	_, err := s.CreateKey(ctx, api.UIDCreateKeyParams{Scope: sc1, Account: "owner"})
	if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
		t.Fatalf("peers down: %v", err)
	}
	if err := s.save(ctx, sc1, keygen(t)[1]); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateKey(ctx, api.UIDCreateKeyParams{Scope: sc1, Account: "owner"})
	if !errors.As(err, &ae) || ae.Code != api.CodeAuthConflict {
		t.Fatalf("second key: %v", err)
	}
	if out, err := s.handleKeygen(ctx, 2, (&api.UIDKeygenInvite{Scope: sc1, Account: "owner", Proofs: okProofs(createOp(sc1, "owner", [16]byte{}).Hash)}).Marshal()); err == nil || out != nil {
		t.Fatal("peer ran a second key generation for a scope")
	}
	if len(a.ops) != 0 {
		t.Fatalf("auth asked %d times", len(a.ops))
	}
	if _, err := s.CreateKey(ctx, api.UIDCreateKeyParams{Scope: "", Account: "owner"}); !errors.As(err, &ae) || ae.Code != api.CodeInvalidParams {
		t.Fatalf("empty scope: %v", err)
	}
}

// TestRates: a burst, then one token per 1/rate.
func TestRates(t *testing.T) {
	r := newRates(2, 3)
	now := r.now()
	r.now = func() time.Time { return now }
	for i := range 3 {
		if _, ok := r.take("a"); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	wait, ok := r.take("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v %v", wait, ok)
	}
	if w, ok := r.peek("a"); ok || w != 500*time.Millisecond {
		t.Fatalf("peek over the burst: %v %v", w, ok)
	}
	if _, ok := r.peek("c"); !ok {
		t.Fatal("peek of a scope without a bucket")
	}
	if _, ok := r.take("b"); !ok {
		t.Fatal("another scope was refused")
	}
	now = now.Add(500 * time.Millisecond)
	if _, ok := r.peek("a"); !ok {
		t.Fatal("peek of a refilled token")
	}
	if _, ok := r.take("a"); !ok {
		t.Fatal("refilled token refused")
	}
}

const (
	sc1 = "0123456789abcdef0123456789abcdef"
	sc2 = "fedcba9876543210fedcba9876543210"
)

// TestLockScope: one key generation per scope at a time on a node, none
// once it holds a share; other scopes are not held up.
func TestLockScope(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, 1, nil)
	release, err := s.lockScope(ctx, sc1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.lockScope(ctx, sc1); !errors.Is(err, errBusy) {
		t.Fatalf("second run while one runs: %v", err)
	}
	r2, err := s.lockScope(ctx, sc2)
	if err != nil {
		t.Fatalf("another scope: %v", err)
	}
	r2()
	if err := s.save(ctx, sc1, keygen(t)[1]); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := s.lockScope(ctx, sc1); !errors.Is(err, errKeyExists) {
		t.Fatalf("a run for a scope with a key: %v", err)
	}
}

// TestSessionID: the key generation's base session id binds the scope and
// the gateway's nonce (each node adds its own randomness on top, and
// node.RunSession refuses a base id it ran before).
func TestSessionID(t *testing.T) {
	s, _ := newTestService(t, 1, nil)
	id := func(scope string, n byte) round.SessionID {
		sid, parties, err := s.sessionID(scope, [32]byte{n})
		if err != nil || len(parties) != 3 {
			t.Fatal(err)
		}
		return sid
	}
	if id(sc1, 1) != id(sc1, 1) || id(sc1, 1) == id(sc2, 1) || id(sc1, 1) == id(sc1, 2) {
		t.Fatal("the session id does not bind exactly the scope and the nonce")
	}
}

// TestAbort: an abort cancels the run of the caller's own invitation
// only; one that comes first refuses the invitation; a malformed body is
// refused.
func TestAbort(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, 1, nil)
	run, cancel := context.WithCancel(ctx)
	defer cancel()
	untrack, err := s.track(2, [32]byte{1}, cancel)
	if err != nil {
		t.Fatal(err)
	}
	// The run ends when it is cancelled, as handleKeygen's does; an abort
	// answers only then.
	var ended atomic.Bool
	go func() { <-run.Done(); ended.Store(true); untrack() }()
	if _, err := s.handleAbort(ctx, 3, make([]byte, 32)); err != nil { // another nonce
		t.Fatal(err)
	}
	if _, err := s.handleAbort(ctx, 3, append([]byte{1}, make([]byte, 31)...)); err != nil { // another gateway
		t.Fatal(err)
	}
	if run.Err() != nil {
		t.Fatal("aborted by another gateway")
	}
	if _, err := s.handleAbort(ctx, 2, append([]byte{1}, make([]byte, 31)...)); err != nil || run.Err() == nil {
		t.Fatalf("the gateway's abort did not stop its run: %v", err)
	}
	if !ended.Load() {
		t.Fatal("the abort answered before the run ended")
	}
	if _, err := s.handleAbort(ctx, 2, make([]byte, 33)); !errors.Is(err, api.ErrUIDBody) {
		t.Fatalf("33-byte abort: %v", err)
	}
	if _, err := s.handleAbort(ctx, 2, append([]byte{9}, make([]byte, 31)...)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.track(2, [32]byte{9}, func() {}); !errors.Is(err, errAborted) {
		t.Fatalf("an invitation aborted before it ran: %v", err)
	}
	if _, err := s.track(3, [32]byte{9}, func() {}); err != nil {
		t.Fatalf("another gateway's invitation with that nonce: %v", err)
	}
}
