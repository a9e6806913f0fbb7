package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/transport"
)

// newPolicyCluster is a 3-node threshold-2 production cluster whose every
// node has the same policy: production with node_hosts 127.0.0.1, and
// admission approved for dev alone. Each node presents its own config's
// policy digest.
func newPolicyCluster(t *testing.T, dev *client.Key) *testCluster {
	t.Helper()
	adm := &config.Admission{Policy: config.AdmissionApproved, DeveloperKeys: []string{dev.Public()}}
	dir, cfgs, apiLns, peerLns := initListening(t, config.InitOptions{Nodes: 3, Threshold: 2, Admission: adm})
	for _, c := range cfgs {
		c.Production, c.NodeHosts = true, []string{"127.0.0.1"}
	}
	cfgs = writeAndLoad(t, dir, cfgs)
	tc := &testCluster{t: t, dir: dir, cfgs: cfgs,
		nodes: make([]*Node, len(cfgs)), clients: make([]*client.Client, len(cfgs)), stops: make([]func(), len(cfgs))}
	tc.startAll(apiLns, peerLns)
	return tc
}

// TestPolicyMismatch plays the operator of node 3 who changes the cluster
// policy on that node alone, three ways: production off, other node_hosts,
// admission open. Each time nodes 1 and 2 refuse node 3's links (its
// record pushes fail, catch-up gets nothing from it, it takes part in no
// signing), report it as a policy mismatch with both digests in
// keymesh_nodeInfo and the log, and keep signing together (t = 2); node 3
// reports the same of them. Restarted with the cluster's policy, node 3 is
// back, and what it stored meanwhile reaches the others if their policy
// admits it.
func TestPolicyMismatch(t *testing.T) {
	ctx := context.Background()
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	devRec, err := record.ParsePrivateKey(dev.MarshalPrivate())
	if err != nil {
		t.Fatal(err)
	}
	tc := newPolicyCluster(t, dev)
	has := func(i int, scope string) bool {
		_, _, err := tc.nodes[i].Auth().State().Scope(ctx, scope)
		return err == nil
	}
	good := tc.cfgs[0].PolicyDigest()
	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}

	// A scope by the approved developer, a user account, a wallet (DKG
	// needs all three nodes), a signature.
	sc, err := tc.clients[0].CreateScope(ctx, dev, walletScopeConfig)
	if err != nil {
		t.Fatalf("scope by the approved developer: %v", err)
	}
	userKey, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.clients[0].RegisterDelegated(ctx, dev, sc.ID, "alice", userKey.Public()); err != nil {
		t.Fatal(err)
	}
	alice := &walletUser{scope: sc.ID, account: "alice", signer: client.UserKeySigner(userKey, sc.ID, "alice")}
	var created api.CreateAccountResult
	eventually(t, "createAccount", func() error {
		return tc.clients[0].Call(client.WithProofs(ctx, alice.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})), api.MethodCreateAccount,
			api.CreateAccountParams{Scope: alice.scope, Account: alice.account}, &created)
	})
	addr := common.HexToAddress(created.Address)
	sign := func(node int, msg string) error {
		params := []any{hexutil.Encode([]byte(msg)), addr.Hex()}
		var sig string
		if err := tc.clients[node].Call(client.WithProofs(ctx, alice.approveParams(t, api.MethodPersonalSign, params)), api.MethodPersonalSign, params, &sig); err != nil {
			return err
		}
		b, err := hexutil.Decode(sig)
		if err != nil {
			return err
		}
		if got := recoverEth(t, accounts.TextHash([]byte(msg)), b); got != addr {
			t.Fatalf("signature recovers to %s, want %s", got.Hex(), addr.Hex())
		}
		return nil
	}
	if err := sign(0, "all three agree"); err != nil {
		t.Fatal(err)
	}

	original := tc.cfgs[2]
	for _, v := range []struct {
		name string
		edit func(c *config.Node)
	}{
		{"production off", func(c *config.Node) { c.Production = false }},
		{"other node_hosts", func(c *config.Node) { c.NodeHosts = []string{"127.0.0.1", "node9.example"} }},
		{"admission open", func(c *config.Node) { c.Admission = nil }},
	} {
		flipped := *original
		v.edit(&flipped)
		if err := flipped.Validate(); err != nil {
			t.Fatal(err)
		}
		bad := flipped.PolicyDigest()
		tc.cfgs[2] = &flipped
		tc.restart(2)

		// Reported as a mismatch, both ways, with both digests.
		for i, peers := range map[int][]uint16{0: {3}, 1: {3}, 2: {1, 2}} {
			ours, theirs := good, bad
			if i == 2 {
				ours, theirs = bad, good
			}
			eventually(t, v.name+": mismatch reported", func() error {
				info, err := tc.clients[i].NodeInfo(ctx)
				if err != nil {
					return err
				}
				for _, p := range info.Peers {
					if !slices.Contains(peers, p.ID) {
						continue
					}
					if p.Reachable || !p.PolicyMismatch || !strings.Contains(p.LastError, "cluster policy mismatch") ||
						!strings.Contains(p.LastError, ours.String()) || !strings.Contains(p.LastError, theirs.String()) {
						return fmt.Errorf("node %d reports peer %d: %q", i+1, p.ID, p.LastError)
					}
				}
				return nil
			})
		}
		wantReady(t, tc.nodes[0], 200, 3)
		wantReady(t, tc.nodes[1], 200, 3)
		wantReady(t, tc.nodes[2], 503, 1, 2)
		if !strings.Contains(tc.logs.String(), `"peer_policy_digest":"`+bad.String()+`","policy_digest":"`+good.String()+`"`) {
			t.Fatalf("%s: node 1's log does not name both digests", v.name)
		}
		if m := metric(t, tc.nodes[0], "keymesh_peer_policy_mismatch"); m != "1" {
			t.Fatalf("%s: node 1's keymesh_peer_policy_mismatch is %q, want 1", v.name, m)
		}

		// Node 3 cannot push a record to them, even a valid one: its
		// write through its own API finds no quorum.
		rec, scopeID := scopeCreate(t, devRec)
		err = tc.clients[2].Call(ctx, api.MethodCreateScope, api.SignedRecord{Record: base64.RawURLEncoding.EncodeToString(rec)}, nil)
		if apiCode(err) != api.CodeUnavailable {
			t.Fatalf("%s: scope through node 3: %v, want %d", v.name, err, api.CodeUnavailable)
		}
		// (Eventually: a link may still be redialling after node 3's
		// restart, and fail as down before its handshake refuses it.)
		for _, to := range []uint16{1, 2} {
			eventually(t, v.name+": push refused", func() error {
				_, err := tc.nodes[2].Transport().Call(ctx, to, "replica.push", []byte{1})
				var pm *transport.PolicyMismatchError
				if !errors.As(err, &pm) {
					return fmt.Errorf("push from node 3 to %d: %v, want a policy mismatch", to, err)
				}
				return nil
			})
		}
		// Catch-up gets nothing from it.
		for i := range 2 {
			eventually(t, v.name+": catch-up refused", func() error {
				err := tc.nodes[i].Replica().CatchUp(ctx)
				var pm *transport.PolicyMismatchError
				if !errors.As(err, &pm) || pm.Peer != 3 {
					return fmt.Errorf("node %d's catch-up: %v, want node 3 refused", i+1, err)
				}
				return nil
			})
		}
		if has(0, scopeID) || has(1, scopeID) || !has(2, scopeID) {
			t.Fatalf("%s: node 3's scope on nodes 1, 2, 3: %v %v %v, want only on node 3", v.name, has(0, scopeID), has(1, scopeID), has(2, scopeID))
		}
		// Nodes 1 and 2 sign without it, through either.
		for i := range 2 {
			if err := sign(i, fmt.Sprintf("%s via node %d", v.name, i+1)); err != nil {
				t.Fatalf("%s: signing via node %d: %v", v.name, i+1, err)
			}
		}

		// Back to the cluster's policy: linked again, and node 3's scope
		// (valid under that policy) reaches the others by catch-up.
		tc.cfgs[2] = original
		tc.restart(2)
		for _, n := range tc.nodes {
			wantReady(t, n, 200)
		}
		if m := metric(t, tc.nodes[0], "keymesh_peer_policy_mismatch"); m != "0" {
			t.Fatalf("%s fixed: node 1's keymesh_peer_policy_mismatch is %q, want 0", v.name, m)
		}
		eventually(t, v.name+": node 3's scope caught up", func() error {
			for i := range 2 {
				tc.nodes[i].Replica().CatchUp(ctx)
			}
			if !has(0, scopeID) || !has(1, scopeID) {
				return errors.New("not on nodes 1 and 2")
			}
			return nil
		})
	}
}

// metric returns the value of an unlabelled metric on n's metrics listener.
func metric(t *testing.T, n *Node, name string) string {
	t.Helper()
	resp, err := http.Get(n.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
