package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
)

// approveAll returns an approval of m by every node of cfgs.
func approveAll(t *testing.T, cfgs []*config.Node, m enclave.Measurement) []*attest.Approval {
	t.Helper()
	var out []*attest.Approval
	for _, c := range cfgs {
		a, err := ApproveRelease(c, m, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestMigrateOutNeedsRelease plays the operator of node 1 of a 2-of-3
// cluster who wants the node's secrets in a build of their choosing: they
// hold node 1's enclave (so node 1's approval) and nothing else. migrate-out
// refuses, before unsealing anything, without approvals; with t−1; with t
// that include one node twice; with a forged "node 2" approval signed by a
// key of their own; with approvals for another cluster, another measurement
// or expired ones. With t valid approvals the secrets move, and the new
// build's request keys differ.
func TestMigrateOutNeedsRelease(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &sealedNode{cfgs: cfgs}
	s.start(t)
	if _, err := s.n.Attestation(context.Background(), nil); err != nil { // make the request keys
		t.Fatal(err)
	}
	s.stop()
	ctx := context.Background()
	cfg := cfgs[0]
	b, err := OpenEnclave(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Measurement() // the "new build" is this test binary too (same platform)
	b.Close()
	approve := func(c *config.Node, mm enclave.Measurement, validity time.Duration, now time.Time) *attest.Approval {
		t.Helper()
		a, err := ApproveRelease(c, mm, validity, now)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	own := approve(cfgs[0], m, time.Hour, time.Now())
	node2 := approve(cfgs[1], m, time.Hour, time.Now())

	// The operator's forgery: node 2's approval re-signed by a key of theirs.
	_, priv, _ := ed25519.GenerateKey(nil)
	forged, err := attest.SignRelease(&attest.Release{ClusterID: cfg.ClusterID, Platform: enclave.PlatformSim, Measurement: m,
		Issued: time.Now(), Expires: time.Now().Add(time.Hour)}, priv)
	if err != nil {
		t.Fatal(err)
	}
	// Node 2's genuine signature over a statement with another cluster id.
	other := *cfgs[1]
	other.ClusterID = "another-cluster"
	otherCluster := approve(&other, m, time.Hour, time.Now())
	// Node 2's genuine approval of another measurement, and an expired one.
	var wrongM enclave.Measurement
	wrongM[0] = 1
	otherBuild := approve(cfgs[1], wrongM, time.Hour, time.Now())
	expired := approve(cfgs[1], m, time.Hour, time.Now().Add(-2*time.Hour))
	// A valid signature by node 2 whose statement was altered on the way.
	tampered := *node2
	tampered.Statement = bytes.Clone(node2.Statement)
	tampered.Statement[len(tampered.Statement)-1] ^= 1

	for _, tc := range []struct {
		name      string
		approvals []*attest.Approval
		why       string
	}{
		{"none", nil, "0 valid approval(s)"},
		{"t-1", []*attest.Approval{own}, "1 valid approval(s)"},
		{"one node twice", []*attest.Approval{own, own}, "a second approval by node"},
		{"forged signer", []*attest.Approval{own, forged}, "not a node of the cluster"},
		{"another cluster", []*attest.Approval{own, otherCluster}, `for cluster "another-cluster"`},
		{"another measurement", []*attest.Approval{own, otherBuild}, "for measurement " + wrongM.String()},
		{"expired", []*attest.Approval{own, expired}, "expired at"},
		{"tampered statement", []*attest.Approval{own, &tampered}, "bad signature"},
	} {
		in, req, err := StartMigrateIn(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = MigrateOut(ctx, cfg, req, m, tc.approvals)
		in.Close()
		if !errors.Is(err, attest.ErrRelease) || !strings.Contains(err.Error(), tc.why) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}

	st, err := openStore(ctx, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := collectSealed(ctx, cfg, st)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	in, req, err := StartMigrateIn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// t valid approvals (among refused ones, which do not count).
	bundle, n, err := MigrateOut(ctx, cfg, req, m, []*attest.Approval{forged, own, expired, node2})
	if err != nil || n != len(before) {
		t.Fatalf("MigrateOut with t approvals: %d %v", n, err)
	}
	if got, err := in.Finish(ctx, bundle, m); err != nil || got != n {
		t.Fatalf("Finish: %d %v", got, err)
	}
	s.start(t)
	defer s.stop()
	doc, err := s.n.Attestation(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var k attest.Keys
	if err := k.UnmarshalBinary(doc.Keys); err != nil {
		t.Fatal(err)
	}
	bb, _ := OpenEnclave(cfg.DataDir)
	defer bb.Close()
	st, _ = openStore(ctx, cfg.DataDir)
	defer st.Close()
	_, after, _ := collectSealed(ctx, cfg, st)
	for i := range after {
		if after[i].Label == enclave.LabelHPKE || after[i].Label == enclave.LabelRSA {
			old, _ := bb.Unseal(before[i].Sealed, before[i].Label)
			neu, _ := bb.Unseal(after[i].Sealed, after[i].Label)
			if bytes.Equal(old, neu) {
				t.Fatalf("%s: request key not rotated by the migration", after[i].Label)
			}
		}
	}
}

// TestReleaseStatementEncoding: the statement round-trips, is canonical
// (every truncation and an extra byte are refused) and binds each field.
func TestReleaseStatementEncoding(t *testing.T) {
	r := attest.Release{ClusterID: "c-1", Platform: "sim", Issued: time.UnixMilli(1000), Expires: time.UnixMilli(2000)}
	r.Measurement[31] = 7
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got attest.Release
	if err := got.UnmarshalBinary(b); err != nil || got.ClusterID != "c-1" || got.Platform != "sim" || got.Measurement != r.Measurement ||
		!got.Issued.Equal(r.Issued) || !got.Expires.Equal(r.Expires) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for i := range b {
		if err := got.UnmarshalBinary(b[:i]); err == nil {
			t.Fatalf("truncated to %d accepted", i)
		}
	}
	if err := got.UnmarshalBinary(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}
