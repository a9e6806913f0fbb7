package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/oprf/dkg"
	"github.com/keymesh/keymesh/internal/record"
)

const uidScope = "0123456789abcdef0123456789abcdef"

func uidShares(t *testing.T) []*oprf.KeyShare {
	t.Helper()
	ss, err := dkg.NewKeygenSessions([]round.PartyID{1, 2, 3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	res := mpctest.Run(ss, nil, 3)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]*oprf.KeyShare, 0, 3)
	for id := round.PartyID(1); id <= 3; id++ {
		out = append(out, res.Outputs[id].(*oprf.KeyShare))
	}
	return out
}

// uidNode is a stand-in gateway: it answers keymesh_uidEvaluate with the
// partials of shares (nil: that node does not answer), after checking
// that the approval binds the blinded element it received.
type uidNode struct {
	mu     sync.Mutex
	shares []*oprf.KeyShare
}

func (n *uidNode) serve(t *testing.T) *httptest.Server {
	reg := httpapi.NewRegistry()
	reg.Register(api.MethodUIDEvaluate, httpapi.Handle(func(ctx context.Context, p api.UIDEvaluateParams) (*api.UIDEvaluation, error) {
		blinded, err := base64.RawURLEncoding.DecodeString(p.Blinded)
		if err != nil {
			return nil, err
		}
		ps, err := api.ParseProofs(httpapi.Proofs(ctx))
		if err != nil {
			return nil, err
		}
		raw, _ := base64.RawURLEncoding.DecodeString(ps.Approvals[0].Approval)
		a, err := record.DecodeApproval(raw)
		if err != nil || a.Hash != api.UIDOperationHash(api.MethodUIDEvaluate, p.Scope, blinded) || a.Scope != p.Scope || a.Account != p.Account {
			t.Errorf("the approval does not bind the request (%v)", err)
		}
		req, err := oprf.ParseRequest(blinded)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		out := &api.UIDEvaluation{Scope: p.Scope}
		for i, sh := range n.shares {
			if sh == nil {
				out.Partials = append(out.Partials, api.UIDPartial{Node: uint16(i + 1), Error: "no answer"})
				continue
			}
			pt, err := oprf.Evaluate(sh, req)
			if err != nil {
				return nil, err
			}
			b, _ := pt.MarshalBinary()
			out.Partials = append(out.Partials, api.UIDPartial{Node: uint16(i + 1), Partial: base64.RawURLEncoding.EncodeToString(b)})
		}
		return out, nil
	}))
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	return srv
}

// TestUIDEvaluate: the SDK verifies every partial against the key: a bad
// partial (another key's share under node 3's id) is named and the other
// two give the UID; the UID is the same from every signer set; with one
// valid partial it fails with a *UIDError naming the bad node; and two
// data give two UIDs.
func TestUIDEvaluate(t *testing.T) {
	ctx := context.Background()
	shares, other := uidShares(t), uidShares(t)
	pubB, _ := shares[0].Public().MarshalBinary()
	key, err := client.ParseUIDKey(uidScope, pubB)
	if err != nil {
		t.Fatal(err)
	}
	if key.Threshold() != 2 || !slices.Equal(key.Nodes(), []uint16{1, 2, 3}) || !bytes.Equal(key.Bytes(), pubB) {
		t.Fatal("key accessors")
	}
	dev, _ := client.GenerateKey("ed25519")
	ap := client.DeveloperSigner(dev, uidScope)
	n := &uidNode{shares: slices.Clone(shares)}
	c, err := client.New(n.serve(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("alice@example.com")
	eval := func() (*client.UIDResult, error) { return c.UIDEvaluate(ctx, ap, key, "alice", data) }

	honest, err := eval()
	if err != nil || len(honest.UID) != 64 || len(honest.Rejected) != 0 || !slices.Equal(honest.Used, []uint16{1, 2}) {
		t.Fatalf("honest: %+v %v", honest, err)
	}
	bad := func(i int) { n.mu.Lock(); n.shares[i] = other[i]; n.mu.Unlock() }
	reset := func() { n.mu.Lock(); n.shares = slices.Clone(shares); n.mu.Unlock() }
	for _, c := range []struct {
		bad  int
		used []uint16
	}{{0, []uint16{2, 3}}, {1, []uint16{1, 3}}, {2, []uint16{1, 2}}} {
		reset()
		bad(c.bad)
		r, err := eval()
		if err != nil || !bytes.Equal(r.UID, honest.UID) || !slices.Equal(r.Rejected, []uint16{uint16(c.bad + 1)}) || !slices.Equal(r.Used, c.used) {
			t.Fatalf("node %d bad: %+v %v", c.bad+1, r, err)
		}
	}
	reset()
	bad(2)
	n.mu.Lock()
	n.shares[1] = nil
	n.mu.Unlock()
	_, err = eval()
	var ue *client.UIDError
	if !errors.As(err, &ue) || !errors.Is(err, client.ErrUIDTooFewPartials) || !slices.Equal(ue.Rejected, []uint16{3}) || ue.Valid != 1 {
		t.Fatalf("one valid partial: %v", err)
	}
	reset()
	r2, err := c.UIDEvaluate(ctx, ap, key, "alice", []byte("bob@example.com"))
	if err != nil || bytes.Equal(r2.UID, honest.UID) {
		t.Fatalf("other data: %v", err)
	}
	// Fresh blinds each time, the same UID.
	again, err := eval()
	if err != nil || !bytes.Equal(again.UID, honest.UID) {
		t.Fatalf("again: %v", err)
	}
}
