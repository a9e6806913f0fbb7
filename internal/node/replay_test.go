package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/wallet"
)

// replayCluster is a cluster of real nodes with a user-mode scope, one
// user and a wallet account, every node counting the nonce reservations
// (auth.KindReserve) it serves.
type replayCluster struct {
	*testCluster
	alice    *walletUser
	addr     common.Address
	reserves []*atomic.Int64 // reservations served, by node index
}

func newReplayCluster(t *testing.T, nodes, threshold int) *replayCluster {
	t.Helper()
	tc := newShapeCluster(t, nodes, threshold)
	rc := &replayCluster{testCluster: tc}
	for _, n := range tc.nodes {
		c := new(atomic.Int64)
		rc.reserves = append(rc.reserves, c)
		h := n.Auth().ReserveHandler(nil)
		n.Transport().Handle(auth.KindReserve, func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
			c.Add(1)
			return h(ctx, from, body)
		})
	}
	for _, n := range tc.nodes { // account creation needs all n
		eventually(t, fmt.Sprintf("node %d sees every peer", n.ID()), func() error {
			if st := n.Ready(); st.Reachable != nodes {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
	_, users := newWalletScope(t, tc.clients, "alice")
	rc.alice = users[0]
	var created api.CreateAccountResult
	proofs := rc.alice.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})
	if err := tc.clients[0].Call(client.WithProofs(context.Background(), proofs), api.MethodCreateAccount, api.CreateAccountParams{Scope: rc.alice.scope, Account: rc.alice.account}, &created); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	if created.N != nodes || created.Threshold != threshold {
		t.Fatalf("created %+v, want %d of %d", created, threshold, nodes)
	}
	rc.addr = common.HexToAddress(created.Address)
	return rc
}

func (rc *replayCluster) reservations() int64 {
	var n int64
	for _, c := range rc.reserves {
		n += c.Load()
	}
	return n
}

// sign sends personal_sign of msg with proofs to node i and checks a
// signature it returns against the account's address.
func (rc *replayCluster) sign(t *testing.T, i int, msg []byte, proofs string) error {
	params := []any{hexutil.Encode(msg), rc.addr.Hex()}
	var sig string
	if err := rc.clients[i].Call(client.WithProofs(context.Background(), proofs), api.MethodPersonalSign, params, &sig); err != nil {
		return err
	}
	if got := recoverEth(t, accounts.TextHash(msg), hexutil.MustDecode(sig)); got != rc.addr {
		t.Errorf("via node %d: signature recovers to %s, want %s", i+1, got.Hex(), rc.addr.Hex())
	}
	return nil
}

// approval returns alice's approval of personal_sign of msg.
func (rc *replayCluster) approval(t *testing.T, msg []byte) string {
	return rc.alice.approveParams(t, api.MethodPersonalSign, []any{hexutil.Encode(msg), rc.addr.Hex()})
}

// replays sends one approval to every gateway, one after the other
// (starting at node first) or all at once, and returns how many signed;
// every refused request must carry api.CodeAuthReplay.
func (rc *replayCluster) replays(t *testing.T, msg []byte, proofs string, first int, concurrent bool) int {
	t.Helper()
	n := len(rc.nodes)
	errs := make([]error, n)
	if concurrent {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = rc.sign(t, i, msg, proofs) })
		}
		wg.Wait()
	} else {
		for k := range n {
			i := (first + k) % n
			errs[i] = rc.sign(t, i, msg, proofs)
		}
	}
	signed := 0
	for i, err := range errs {
		switch {
		case err == nil:
			signed++
		case apiCode(err) != api.CodeAuthReplay:
			t.Errorf("%q via node %d: %v, want code %d (replay)", msg, i+1, err, api.CodeAuthReplay)
		case !strings.Contains(err.Error(), "already used"):
			t.Errorf("%q via node %d: %v: the client cannot tell it was a replay", msg, i+1, err)
		}
	}
	return signed
}

// TestApprovalReplayAcrossGateways is issue 12's finding 4: on clusters
// with n ≥ 2t, a signer set can avoid every node that saw an approval, so
// node-local nonces let one approval sign twice through two gateways. With
// the nonce recorded on n−t+1 nodes before any co-signer is invited
// (wallet/reserve.go, auth.ReserveHandler), one approval replayed to every
// gateway yields exactly one signature when the replays come one after the
// other, and at most one when they race (a race may end with none: failing
// closed), every refusal with api.CodeAuthReplay. On 3 nodes with t = 2 no
// reservation is sent at all: the signers are the quorum.
func TestApprovalReplayAcrossGateways(t *testing.T) {
	for _, shape := range []struct{ n, t int }{{4, 2}, {5, 2}, {3, 2}} {
		t.Run(fmt.Sprintf("%dof%d", shape.t, shape.n), func(t *testing.T) {
			rc := newReplayCluster(t, shape.n, shape.t)
			extra := max(0, auth.ReserveQuorum(shape.n, shape.t)-shape.t)
			const rounds = 6 // the gateways rotate their co-signers: vary the signer sets
			for r := range rounds {
				before := rc.reservations()
				msg := []byte(fmt.Sprintf("sequential %d", r))
				if got := rc.replays(t, msg, rc.approval(t, msg), r, false); got != 1 {
					t.Errorf("%q replayed to every gateway in turn: %d signatures, want 1", msg, got)
				}
				// The first request reserves at exactly the extra nodes;
				// a replay may send some before it is refused.
				if got := rc.reservations() - before; got < int64(extra) || extra == 0 && got != 0 {
					t.Errorf("%q: %d reservations served, want at least %d (none when the signers are a quorum)", msg, got, extra)
				}
			}
			none := 0
			for r := range rounds {
				msg := []byte(fmt.Sprintf("concurrent %d", r))
				switch got := rc.replays(t, msg, rc.approval(t, msg), 0, true); got {
				case 0:
					none++
				case 1:
				default:
					t.Errorf("%q sent to every gateway at once: %d signatures, want at most 1", msg, got)
				}
			}
			t.Logf("%d of %d concurrent replay races ended with no signature (failing closed)", none, rounds)
			if extra == 0 && rc.reservations() != 0 {
				t.Errorf("%d reservations sent on a cluster whose signers are a quorum; want none", rc.reservations())
			}
			// A fresh approval still signs through every gateway.
			for i := range rc.nodes {
				msg := []byte(fmt.Sprintf("fresh via %d", i+1))
				if err := rc.sign(t, i, msg, rc.approval(t, msg)); err != nil {
					t.Errorf("fresh approval via node %d: %v", i+1, err)
				}
			}
		})
	}
}

// TestReservationNeedsValidApproval plays a peer that asks an honest node
// to reserve nonces directly over the peer transport: a reservation whose
// approval does not verify (signature altered, nonce kept) or does not
// approve the operation is refused with auth's code and records nothing,
// so the genuine approval can still be reserved, under its request id
// only; and a malformed body is refused.
func TestReservationNeedsValidApproval(t *testing.T) {
	rc := newReplayCluster(t, 4, 2)
	ctx := context.Background()
	msg := []byte("reserve me")
	params := []any{hexutil.Encode(msg), rc.addr.Hex()}
	raw, _ := jsonMarshal(params)
	p, err := wallet.Prepare(api.MethodPersonalSign, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	genuine := rc.approval(t, msg)
	op := auth.Operation{Scope: rc.alice.scope, Account: rc.alice.account, Method: api.MethodPersonalSign, Hash: p.Hash()}
	op.Request[0] = 1

	ps, err := auth.ParseProofs(genuine)
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(ps.Approvals[0].Sig)
	sig[len(sig)/2] ^= 'A' ^ 'B' // a base64url character for another
	if sig[len(sig)/2] == ps.Approvals[0].Sig[len(sig)/2] {
		t.Fatal("signature not altered")
	}
	ps.Approvals[0].Sig = string(sig)
	forged := ps.Encode()
	other := op
	other.Hash[0] ^= 1

	reserve := func(op auth.Operation, proofs string) error {
		_, err := rc.nodes[0].Transport().Call(ctx, 3, auth.KindReserve, auth.EncodeReservation(op, proofs))
		return err
	}
	for name, c := range map[string]struct {
		op     auth.Operation
		proofs string
		code   int
	}{
		"altered signature":           {op, forged, api.CodeAuthBadProof},
		"another operation":           {other, genuine, api.CodeAuthWrongOperation},
		"no approval":                 {op, "", api.CodeAuthMissing},
		"approval of another message": {op, rc.approval(t, []byte("another message")), api.CodeAuthWrongOperation},
	} {
		if err := reserve(c.op, c.proofs); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("[%d]", c.code)) {
			t.Errorf("%s: node 3 answered %v, want a refusal with code %d", name, err, c.code)
		}
	}
	if _, err := rc.nodes[0].Transport().Call(ctx, 3, auth.KindReserve, []byte{1, 0, 0}); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("malformed reservation: %v", err)
	}
	// Nothing was burnt: the genuine approval reserves, twice for the same
	// request (the gateway's retry), and not for another request.
	if err := reserve(op, genuine); err != nil {
		t.Fatalf("genuine reservation after refused ones: %v", err)
	}
	if err := reserve(op, genuine); err != nil {
		t.Fatalf("the same reservation again (same request): %v", err)
	}
	op.Request[0] = 2
	if err := reserve(op, genuine); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("[%d]", api.CodeAuthReplay)) {
		t.Fatalf("the approval reserved for another request: %v, want a replay refusal", err)
	}
	// Node 3 now holds the nonce for the test's request: replayed to every
	// gateway, the approval signs at most once (only a quorum without
	// node 3 can sign), every refusal a replay.
	if got := rc.replays(t, msg, genuine, 0, false); got > 1 {
		t.Errorf("%d signatures, want at most 1", got)
	}
}
