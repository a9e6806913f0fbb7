package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
)

// newAdmissionCluster is newShapeCluster (3 nodes, threshold 2) with
// admission written into every node's config by InitCluster, as
// `keymesh cluster init` does; edit changes a node's config after that
// (a malicious operator's node). Every node presents the policy digest of
// the config InitCluster wrote, so that a node whose policy edit changed
// is not refused by the transport (policy_test.go tests that) and the
// test reaches the honest nodes' own record checks: a malicious operator
// lies about its policy.
func newAdmissionCluster(t *testing.T, adm *config.Admission, edit func(*config.Node)) *testCluster {
	t.Helper()
	dir, cfgs, apiLns, peerLns := initListening(t, config.InitOptions{Nodes: 3, Threshold: 2, Admission: adm})
	cfgs = writeAndLoad(t, dir, cfgs)
	written := cfgs[0].PolicyDigest()
	if edit != nil {
		for _, c := range cfgs {
			edit(c)
		}
	}
	tc := &testCluster{t: t, dir: dir, cfgs: cfgs,
		nodes: make([]*Node, len(cfgs)), clients: make([]*client.Client, len(cfgs)), stops: make([]func(), len(cfgs)),
		transport: func(_ int, o *transport.Options) { o.PolicyDigest = &written }}
	tc.startAll(apiLns, peerLns)
	return tc
}

// scopeCreate returns a scope.create record signed by dev, and its scope id.
func scopeCreate(t *testing.T, dev *record.PrivateKey) ([]byte, string) {
	t.Helper()
	b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}}
	rand.Read(b.Nonce[:])
	r, err := record.Sign(record.ScopeCreate, b.Marshal(), dev)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal(), b.ScopeID()
}

// TestAdmissionApprovedCluster runs the approved admission policy on a
// real 3-node cluster whose node 3 is run by a malicious operator (its
// config says "open"): a developer with an approved key creates a scope
// on every node; one whose key is not approved is refused by the honest
// nodes' API, and the malicious node can make no honest node store its
// scope.create, neither by submitting it through its own API (replicated
// to its peers), nor by pushing it over the peer protocol, nor by serving
// it in catch-up.
func TestAdmissionApprovedCluster(t *testing.T) {
	ctx := context.Background()
	approved, err := record.GenerateKey(record.P256)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := record.GenerateKey(record.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	adm := &config.Admission{Policy: config.AdmissionApproved, DeveloperKeys: []string{approved.Public().String()}}
	tc := newAdmissionCluster(t, adm, func(c *config.Node) {
		if c.ID == 3 {
			c.Admission = nil // the malicious operator's node admits anyone
		}
	})
	has := func(i int, scope string) bool {
		_, _, err := tc.nodes[i].Auth().State().Scope(ctx, scope)
		return err == nil
	}
	create := func(i int, rec []byte) error {
		return tc.clients[i].Call(ctx, api.MethodCreateScope, api.SignedRecord{Record: base64.RawURLEncoding.EncodeToString(rec)}, nil)
	}

	good, goodID := scopeCreate(t, approved)
	if err := create(0, good); err != nil {
		t.Fatalf("scope.create by the approved key: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !(has(0, goodID) && has(1, goodID) && has(2, goodID)) {
		if time.Now().After(deadline) {
			t.Fatal("the approved scope did not reach every node")
		}
		time.Sleep(20 * time.Millisecond)
	}

	bad, badID := scopeCreate(t, stranger)
	var ae *api.Error
	if err := create(0, bad); !errors.As(err, &ae) || ae.Code != api.CodeRejected || !strings.Contains(ae.Message, "approved") {
		t.Fatalf("an honest node's API took a scope.create by an unapproved key: %v", err)
	}

	// Through the malicious node's API: it stores the record itself and
	// pushes it; both honest nodes refuse, so no write quorum.
	if err := create(2, bad); !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
		t.Fatalf("via the malicious node: %v, want the quorum failure %d", err, api.CodeUnavailable)
	}
	if !has(2, badID) {
		t.Fatal("the malicious node did not store the scope itself: the test stages nothing")
	}
	// Pushed over the peer protocol by node 3.
	for _, to := range []uint16{1, 2} {
		_, err := tc.nodes[2].tr.Call(ctx, to, "replica.push", append([]byte{1}, bad...))
		var re *transport.RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
			t.Fatalf("push to node %d: %v", to, err)
		}
	}
	// Served in catch-up: node 3's log holds it.
	for i := range 2 {
		if err := tc.nodes[i].Replica().CatchUp(ctx); err != nil {
			t.Fatalf("node %d: CatchUp: %v", i+1, err)
		}
		if has(i, badID) {
			t.Fatalf("honest node %d stored the unapproved scope", i+1)
		}
		if ok, err := tc.nodes[i].Replica().Has(ctx, replica.RecordID(bad)); err != nil || ok {
			t.Fatalf("honest node %d holds the record: %v %v", i+1, ok, err)
		}
	}
}

// TestAdmissionOpenCluster: with the open policy written by cluster init
// (the default's explicit form), any key creates a scope, replicated to
// every node.
func TestAdmissionOpenCluster(t *testing.T) {
	ctx := context.Background()
	tc := newAdmissionCluster(t, &config.Admission{Policy: config.AdmissionOpen}, nil)
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := tc.clients[1].CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatalf("open cluster: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, nd := range tc.nodes {
			if _, _, err := nd.Auth().State().Scope(ctx, sc.ID); err == nil {
				n++
			}
		}
		if n == len(tc.nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scope reached %d of %d nodes", n, len(tc.nodes))
		}
	}
}
