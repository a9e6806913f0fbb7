package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/audit"
)

// auditActivity runs, on tc, a scope creation, an account registration, a
// key generation through node 2 and a personal_sign of msg through node
// 1, and returns the user, the address and the proofs of the signature.
func auditActivity(t *testing.T, tc *testCluster, msg []byte) (*walletUser, common.Address, string) {
	t.Helper()
	ctx := context.Background()
	_, users := newWalletScope(t, tc.clients, "alice")
	alice := users[0]
	var created api.CreateAccountResult
	if err := tc.clients[1].Call(client.WithProofs(ctx, alice.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})),
		api.MethodCreateAccount, api.CreateAccountParams{Scope: alice.scope, Account: alice.account}, &created); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	addr := common.HexToAddress(created.Address)
	params := []any{hexutil.Encode(msg), addr.Hex()}
	proofs := alice.approveParams(t, api.MethodPersonalSign, params)
	var sig string
	if err := tc.clients[0].Call(client.WithProofs(ctx, proofs), api.MethodPersonalSign, params, &sig); err != nil {
		t.Fatalf("personal_sign: %v", err)
	}
	return alice, addr, proofs
}

// entries returns node n's audit entries.
func auditEntries(t *testing.T, n *Node) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	if err := n.AuditLog().Since(context.Background(), timeZero, func(e *audit.Entry, _ [32]byte) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// heldHeads returns the heads of node id that every other node holds, and
// node id's identity key as node 1 (or 2) pins it.
func heldHeads(t *testing.T, tc *testCluster, id uint16) ([]*audit.SignedHead, ed25519.PublicKey) {
	t.Helper()
	var hs []*audit.SignedHead
	var pub ed25519.PublicKey
	for i, n := range tc.nodes {
		if uint16(i+1) == id {
			continue
		}
		h, err := audit.NewHeadStore(n.Store()).Heads(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h...)
		p, _ := tc.cfgs[i].Peer(id)
		pub, _ = p.PublicKey()
	}
	return hs, pub
}

// TestAuditLog runs real auth records, a key generation and a signature on
// a real 3-node cluster and checks each node's chain: the entries name the
// operation (scope, account, method, operation hash, signers, approving
// key), the signed head reaches the peers, the chain survives a restart and
// verifies against the heads the peers hold; and a peer refuses a head
// that contradicts one it holds (a node that truncated its chain).
func TestAuditLog(t *testing.T) {
	ctx := context.Background()
	tc := newTestCluster(t)
	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}
	alice, addr, proofs := auditActivity(t, tc, []byte("audit me"))

	kinds := map[string]*audit.Entry{}
	for _, e := range auditEntries(t, tc.nodes[0]) {
		kinds[e.Kind+" "+e.Method] = e
	}
	for _, k := range []string{"auth.record scope.create", "auth.record account.register", "wallet.keygen.peer keymesh_createAccount", "wallet.sign personal_sign"} {
		if kinds[k] == nil {
			t.Fatalf("node 1 has no %q entry: %v", k, kinds)
		}
	}
	sig := kinds["wallet.sign personal_sign"]
	if sig.Scope != alice.scope || sig.Account != alice.account || sig.Outcome != audit.OutcomeOK || len(sig.Signers) != 2 || sig.Signers[0] != 1 ||
		len(sig.Keys) != 1 || sig.Keys[0][:4] != "key:" || sig.OpHash == ([32]byte{}) || sig.Request == ([16]byte{}) {
		t.Fatalf("signature entry %+v", sig)
	}
	if want := audit.ApprovalKeys(proofs, api.MethodPersonalSign, sig.OpHash); len(want) != 1 || want[0] != sig.Keys[0] {
		t.Fatalf("the entry's key %v is not the approving key %v (operation hash mismatch?)", sig.Keys, want)
	}
	// The co-signer appends when its session ends, which may be just
	// after the gateway answered.
	eventually(t, "a co-signer's entry of the signature", func() error {
		for _, n := range tc.nodes[1:] {
			for _, e := range auditEntries(t, n) {
				if e.Kind == audit.KindCosign && e.OpHash == sig.OpHash && e.Request == sig.Request && e.Outcome == audit.OutcomeOK {
					return nil
				}
			}
		}
		return errors.New("none yet")
	})

	// The head goes to the peers; they hold it.
	h, err := tc.nodes[0].PublishAuditHead(ctx)
	if err != nil || h == nil {
		t.Fatalf("publish: %v %v", h, err)
	}
	held, pub := heldHeads(t, tc, 1)
	if len(held) != 2 || held[0].Seq != h.Seq || held[1].Hash != h.Hash {
		t.Fatalf("peers hold %v, want the head %d twice", held, h.Seq)
	}

	// Restart: the chain goes on from where it was.
	before := auditEntries(t, tc.nodes[0])
	tc.restart(0)
	wantReady(t, tc.nodes[0], 200)
	params := []any{hexutil.Encode([]byte("after the restart")), addr.Hex()}
	var s string
	if err := tc.clients[0].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodPersonalSign, params)), api.MethodPersonalSign, params, &s); err != nil {
		t.Fatal(err)
	}
	after := auditEntries(t, tc.nodes[0])
	if len(after) <= len(before) || after[len(before)-1].Hash() != before[len(before)-1].Hash() || after[len(before)].Prev != before[len(before)-1].Hash() {
		t.Fatalf("the chain did not continue across the restart: %d then %d entries", len(before), len(after))
	}
	if _, err := tc.nodes[0].PublishAuditHead(ctx); err != nil {
		t.Fatal(err)
	}
	held, _ = heldHeads(t, tc, 1)
	rep, err := audit.Verify(ctx, tc.nodes[0].Store(), 1, pub, held)
	if err != nil || !rep.OK() || rep.Matched != uint64(len(after)) {
		t.Fatalf("verify after restart: %+v %v", rep, err)
	}

	// Node 1 truncates its chain and signs the shorter head: its peers
	// refuse it, and keep the head that convicts it.
	st := tc.nodes[0].Store()
	last := uint64(len(after))
	for seq := last - 1; seq <= last; seq++ {
		st.Delete(ctx, "audit/chain", auditKey(seq))
	}
	b, _ := st.Get(ctx, "audit/chain", auditKey(last-2))
	e, _ := audit.DecodeEntry(b)
	h2 := e.Hash()
	st.Put(ctx, "audit/meta", "head", append(be64(last-2), h2[:]...))
	if _, err := tc.nodes[0].PublishAuditHead(ctx); err == nil {
		t.Fatal("peers accepted a head below the one they hold")
	}
	held, _ = heldHeads(t, tc, 1)
	rep, err = audit.Verify(ctx, st, 1, pub, held)
	if err != nil || rep.OK() || rep.FirstBad() != last-1 {
		t.Fatalf("truncation: %+v %v", rep, err)
	}
}

var timeZero time.Time

func auditKey(seq uint64) string { return fmt.Sprintf("%016x", seq) }

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
