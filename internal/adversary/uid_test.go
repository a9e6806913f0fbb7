//go:build keymesh_adversary

package adversary

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/oprf"
)

// uidOwner is a user-mode scope with its developer's key and one account
// whose user approves with her own key.
type uidOwner struct {
	Scope, Account string
	dev, user      *client.Key
}

// newUIDOwner creates a user-mode scope through node 1 and registers
// account in it, and waits until every node accepts the user's approvals.
func newUIDOwner(t *testing.T, c *Cluster, account string) *uidOwner {
	t.Helper()
	ctx := context.Background()
	dev, _ := client.GenerateKey("ed25519")
	user, _ := client.GenerateKey("p256")
	sc, err := c.Client(1).CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client(1).RegisterDelegated(ctx, dev, sc.ID, account, user.Public()); err != nil {
		t.Fatal(err)
	}
	o := &uidOwner{Scope: sc.ID, Account: account, dev: dev, user: user}
	for id := uint16(1); int(id) <= c.N(); id++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			h, _ := o.userSigner().Approve(ctx, client.Operation{Scope: o.Scope, Account: account, Method: api.MethodAccounts,
				Hash: api.OperationHash(api.MethodAccounts, common.Address{}, [32]byte{})})
			var out []string
			if err := c.Call(id, h, api.MethodAccounts, nil, &out); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("records on node %d: not within 10 s: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return o
}

func (o *uidOwner) userSigner() *client.KeySigner {
	return client.UserKeySigner(o.user, o.Scope, o.Account)
}

// creator approves a key creation as the scope's developer and the
// account's user (a user-mode account needs the user's approval too).
func (o *uidOwner) creator() client.Approver {
	return client.HybridApprover(client.DeveloperSigner(o.dev, o.Scope), o.userSigner())
}

// evalProofs is the user's approval of evaluating blinded in scope.
func (o *uidOwner) evalProofs(t *testing.T, scope string, blinded []byte) string {
	t.Helper()
	h, err := client.UserKeySigner(o.user, o.Scope, o.Account).Approve(context.Background(), client.Operation{Scope: scope, Account: o.Account,
		Method: api.MethodUIDEvaluate, Hash: api.UIDOperationHash(api.MethodUIDEvaluate, scope, blinded)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func apiCode(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// badPartial is a malicious node's answer to uid/evaluate/v1: a partial
// that parses, carries the node's own id, and is not k_i·B (it is B, with
// a proof that cannot verify).
func badPartial(id uint16) func(context.Context, uint16, []byte) ([]byte, error) {
	return func(_ context.Context, _ uint16, body []byte) ([]byte, error) {
		inv, err := api.DecodeUIDEvaluateInvite(body)
		if err != nil {
			return nil, err
		}
		b := []byte{1}
		b = binary.BigEndian.AppendUint16(b, id)
		b = append(b, inv.Blinded[1:]...)
		b = append(b, 1) // proof c = 1
		b = append(b, make([]byte, 31)...)
		b = append(b, 1) // proof s = 1
		return append(b, make([]byte, 31)...), nil
	}
}

// TestUID runs the identity service on a real 3-node, 2-of-3 cluster:
//
//   - a scope's key is made by all three nodes, each holding one share of
//     one public key; a second key for the scope is refused (through the
//     API, and by each honest node when a malicious gateway invites it),
//     and so is a key whose approval lacks the developer's;
//   - the UID of one input is the same through three gateways and the
//     three signer sets {1,2}, {1,3} and {2,3}, and differs in another
//     scope (no node reconstructs the key, so agreement of independent
//     evaluations is what is checked);
//   - node 2, malicious, answers bad partials: the SDK names it and uses
//     the two others;
//   - node 2, as a malicious gateway, gets no partial from the honest
//     nodes for an element the user did not approve, in another scope,
//     under a forged approval, or by replaying an approval under a new
//     request;
//   - with one node of the t = 2 up, no evaluation is possible.
func TestUID(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	o1 := newUIDOwner(t, c, "alice")
	o2 := newUIDOwner(t, c, "alice")

	// A key needs the developer's approval: the user's alone is refused.
	_, err := c.Client(1).UIDCreateKey(ctx, o1.userSigner(), o1.Scope, o1.Account)
	if apiCode(err) != api.CodeAuthIncomplete {
		t.Fatalf("key creation approved by the user alone: %v", err)
	}
	key1, err := c.Client(1).UIDCreateKey(ctx, o1.creator(), o1.Scope, o1.Account)
	if err != nil {
		t.Fatal(err)
	}
	if key1.Threshold() != 2 || !slices.Equal(key1.Nodes(), []uint16{1, 2, 3}) {
		t.Fatalf("key: t=%d nodes %v", key1.Threshold(), key1.Nodes())
	}
	for id := uint16(1); id <= 3; id++ {
		k, err := c.Client(id).UIDPublicKey(ctx, o1.Scope)
		if err != nil || !k.Equal(key1) {
			t.Fatalf("node %d's copy of the key: %v", id, err)
		}
	}
	_, err = c.Client(2).UIDCreateKey(ctx, o1.creator(), o1.Scope, o1.Account)
	if apiCode(err) != api.CodeAuthConflict {
		t.Fatalf("second key for a scope: %v", err)
	}
	// A malicious gateway (node 2) inviting the honest nodes to a second
	// key generation for the scope, with a fresh valid approval, is refused
	// at once by each of them.
	cp, err := o1.creator().Approve(ctx, client.Operation{Scope: o1.Scope, Account: o1.Account, Method: api.MethodUIDCreateKey,
		Hash: api.UIDOperationHash(api.MethodUIDCreateKey, o1.Scope, nil)})
	if err != nil {
		t.Fatal(err)
	}
	kinv := api.UIDKeygenInvite{Scope: o1.Scope, Account: o1.Account, Proofs: cp, Request: [16]byte{1}, Nonce: [32]byte{2}}
	for _, to := range []uint16{1, 3} {
		if out, err := c.Evil(2).Call(ctx, to, api.PeerUIDKeygen, kinv.Marshal()); err == nil || out != nil || !strings.Contains(err.Error(), "has a key already") {
			t.Fatalf("node %d: second key generation for a scope: %v", to, err)
		}
	}
	key2, err := c.Client(3).UIDCreateKey(ctx, o2.creator(), o2.Scope, o2.Account)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(key1.Bytes(), key2.Bytes()) {
		t.Fatal("two scopes got one key")
	}

	data := []byte("did:example:alice|1990-01-01")
	r12, err := c.Client(1).UIDEvaluate(ctx, o1.userSigner(), key1, o1.Account, data)
	if err != nil || len(r12.UID) != 64 || !slices.Equal(r12.Used, []uint16{1, 2}) || len(r12.Rejected) != 0 {
		t.Fatalf("evaluation through node 1: %+v %v", r12, err)
	}
	other, err := c.Client(1).UIDEvaluate(ctx, o2.userSigner(), key2, o2.Account, data)
	if err != nil || bytes.Equal(other.UID, r12.UID) {
		t.Fatalf("the same data in another scope: %v", err)
	}
	// The SDK refuses to use one scope's key with another scope's
	// approval: the nodes refuse an approval for another scope.
	if _, err := c.Client(1).UIDEvaluate(ctx, o2.userSigner(), key1, o2.Account, data); err == nil {
		t.Fatal("evaluated scope 1's key on scope 2's approval")
	}

	// Node 2 turns malicious: its partials fail their proofs.
	evil := c.Evil(2)
	evil.Handle(api.PeerUIDEvaluate, badPartial(2))
	r13, err := c.Client(3).UIDEvaluate(ctx, o1.userSigner(), key1, o1.Account, data)
	if err != nil || !slices.Equal(r13.Rejected, []uint16{2}) || !slices.Equal(r13.Used, []uint16{1, 3}) || !bytes.Equal(r13.UID, r12.UID) {
		t.Fatalf("evaluation through node 3 with node 2 malicious: %+v %v", r13, err)
	}

	// Node 2 as a malicious gateway, talking to the honest nodes directly.
	pub, err := oprf.ParsePublicKey(key1.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	_, req, _ := oprf.BlindScoped(o1.Scope, data)
	blinded, _ := req.MarshalBinary()
	_, req2, _ := oprf.BlindScoped(o1.Scope, []byte("did:example:bob"))
	blinded2, _ := req2.MarshalBinary()
	invite := func(scope, proofs string, b []byte, request byte) []byte {
		inv := api.UIDEvaluateInvite{Scope: scope, Account: o1.Account, Proofs: proofs, Request: [16]byte{request, 0xee}}
		copy(inv.Blinded[:], b)
		return inv.Marshal()
	}
	mallory, _ := client.GenerateKey("p256")
	forged, _ := client.UserKeySigner(mallory, o1.Scope, o1.Account).Approve(ctx, client.Operation{Scope: o1.Scope, Account: o1.Account,
		Method: api.MethodUIDEvaluate, Hash: api.UIDOperationHash(api.MethodUIDEvaluate, o1.Scope, blinded)})
	approved := o1.evalProofs(t, o1.Scope, blinded)
	for _, to := range []uint16{1, 3} {
		for name, body := range map[string][]byte{
			"another element":   invite(o1.Scope, o1.evalProofs(t, o1.Scope, blinded2), blinded, 1),
			"another scope":     invite(o2.Scope, o1.evalProofs(t, o1.Scope, blinded), blinded, 2),
			"a forged approval": invite(o1.Scope, forged, blinded, 3),
		} {
			if out, err := evil.Call(ctx, to, api.PeerUIDEvaluate, body); err == nil || out != nil {
				t.Errorf("node %d evaluated for a malicious gateway with %s", to, name)
			}
		}
	}
	// The user's approval of this element, under the gateway's request id:
	// each honest node evaluates it once; the same approval under a new
	// request id (a gateway making its own queries) is a replay.
	for _, to := range []uint16{1, 3} {
		out, err := evil.Call(ctx, to, api.PeerUIDEvaluate, invite(o1.Scope, approved, blinded, 9))
		if err != nil {
			t.Fatalf("node %d refused an approved request: %v", to, err)
		}
		pt, err := oprf.ParsePartial(out)
		if err != nil || pt.ID() != to || pt.Verify(pub, req) != nil {
			t.Fatalf("node %d's partial: %v", to, err)
		}
		if out, err := evil.Call(ctx, to, api.PeerUIDEvaluate, invite(o1.Scope, approved, blinded, 10)); err == nil || out != nil {
			t.Errorf("node %d evaluated a replayed approval under a new request", to)
		}
	}
	if !strings.Contains(c.Log(1), "refused a partial evaluation") || !strings.Contains(c.Log(3), "refused a partial evaluation") {
		t.Error("the honest nodes did not log their refusals")
	}

	// Node 1 stops: node 2 as gateway (its own partial is its service's)
	// and node 3 give the same UID.
	c.Stop(1)
	r23, err := c.Client(2).UIDEvaluate(ctx, o1.userSigner(), key1, o1.Account, data)
	if err != nil || !slices.Equal(r23.Used, []uint16{2, 3}) || !bytes.Equal(r23.UID, r12.UID) {
		t.Fatalf("evaluation through node 2 with node 1 down: %+v %v", r23, err)
	}

	// Fewer than t nodes: node 2 alone cannot evaluate.
	c.Stop(3)
	_, err = c.Client(2).UIDEvaluate(ctx, o1.userSigner(), key1, o1.Account, data)
	if apiCode(err) != api.CodeUnavailable {
		t.Fatalf("evaluation with one node up: %v", err)
	}
}

// TestUIDConcurrentCreate: two gateways asked at once to make one scope's
// key. Whatever the interleaving, at most one run completes, and once a
// key exists (retrying through a third gateway until one does) every node
// holds a share of the same key: no node is left with a share of another
// run. When both runs fail (each gateway refused by a peer running the
// other), each gateway aborts its run at the nodes it invited
// (uid/abort/v1), so the retry succeeds at once rather than after the
// key generation timeout.
func TestUIDConcurrentCreate(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	o := newUIDOwner(t, c, "alice")
	errs := make(chan error, 2)
	keys := make(chan *client.UIDKey, 2)
	for _, via := range []uint16{1, 2} {
		go func() {
			k, err := c.Client(via).UIDCreateKey(ctx, o.creator(), o.Scope, o.Account)
			if err == nil {
				keys <- k
			}
			errs <- err
		}()
	}
	ok := 0
	for range 2 {
		err := <-errs
		if err == nil {
			ok++
		}
		t.Logf("concurrent create: %v", err)
	}
	if ok > 1 {
		t.Fatal("two key generations for one scope completed")
	}
	var key *client.UIDKey
	select {
	case key = <-keys:
	default:
	}
	deadline := time.Now().Add(90 * time.Second)
	for key == nil {
		k, err := c.Client(3).UIDCreateKey(ctx, o.creator(), o.Scope, o.Account)
		switch code := apiCode(err); {
		case err == nil:
			key = k
		case code == api.CodeAuthConflict:
			if key, err = c.Client(3).UIDPublicKey(ctx, o.Scope); err != nil {
				t.Fatalf("node 3 has a key it does not serve: %v", err)
			}
		case code == api.CodeBusy || code == api.CodeRejected || code == api.CodeUnavailable:
			if time.Now().After(deadline) {
				t.Fatalf("no key after 90 s: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the refused runs end at their timeout
		default:
			t.Fatalf("create through node 3: %v", err)
		}
	}
	for id := uint16(1); id <= 3; id++ {
		k, err := c.Client(id).UIDPublicKey(ctx, o.Scope)
		if err != nil || !k.Equal(key) {
			t.Fatalf("node %d holds another key (or none): %v", id, err)
		}
	}
	r1, err := c.Client(1).UIDEvaluate(ctx, o.userSigner(), key, o.Account, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	r3, err := c.Client(3).UIDEvaluate(ctx, o.userSigner(), key, o.Account, []byte("x"))
	if err != nil || !bytes.Equal(r1.UID, r3.UID) {
		t.Fatalf("evaluations disagree: %v", err)
	}
}

// TestUIDMaliciousKeygen: node 3 corrupts the shares it deals to node 1
// in the DKG. Node 1 (the gateway) detects it against node 3's
// commitments and aborts naming node 3; nobody stores a share; the same
// creation succeeds once node 3 behaves, under a fresh session.
func TestUIDMaliciousKeygen(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	o := newUIDOwner(t, c, "alice")
	remove := c.Evil(3).Alter(FlipBit(All(To(1), Direct(-1)), 0, 0))
	_, err := c.Client(1).UIDCreateKey(ctx, o.creator(), o.Scope, o.Account)
	if apiCode(err) != api.CodeRejected || !strings.Contains(err.Error(), "node(s) [3] sent invalid messages") {
		t.Fatalf("key generation with node 3 corrupting its shares: %v", err)
	}
	for id := uint16(1); id <= 3; id++ {
		if _, err := c.Client(id).UIDPublicKey(ctx, o.Scope); apiCode(err) != api.CodeNotFound {
			t.Fatalf("node %d holds a key after an aborted key generation: %v", id, err)
		}
	}
	remove()
	key, err := c.Client(1).UIDCreateKey(ctx, o.creator(), o.Scope, o.Account)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint16(2); id <= 3; id++ {
		if k, err := c.Client(id).UIDPublicKey(ctx, o.Scope); err != nil || !k.Equal(key) {
			t.Fatalf("node %d: %v", id, err)
		}
	}
}
