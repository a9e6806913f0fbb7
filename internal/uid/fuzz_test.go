package uid

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/oprf"
)

// FuzzHandleEvaluate: whatever a gateway sends to uid/evaluate/v1, a node
// answers only a partial of its own that verifies for the element it was
// sent, and only when the approval (here the stand-in's) binds that
// element in that scope; anything else is refused without a panic.
func FuzzHandleEvaluate(f *testing.F) {
	_, req, _ := oprf.BlindScoped(sc1, []byte("seed"))
	bl, _ := req.MarshalBinary()
	inv := api.UIDEvaluateInvite{Scope: sc1, Account: "alice", Proofs: okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, sc1, bl))}
	copy(inv.Blinded[:], bl)
	f.Add(inv.Marshal())
	inv.Proofs = "none"
	f.Add(inv.Marshal())
	f.Add([]byte{1, 0})

	// One node and one key for every input: a store and a key generation
	// per input would dominate the run.
	ctx := context.Background()
	s, _ := newTestService(f, 2, func(o *Options) { o.Rate, o.Burst = 1e9, 1<<20 })
	shares := keygen(f)
	if err := s.save(ctx, sc1, shares[2]); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := s.handleEvaluate(ctx, 1, body)
		if err != nil {
			if out != nil {
				t.Fatal("an answer with an error")
			}
			return
		}
		m, derr := api.DecodeUIDEvaluateInvite(body)
		if derr != nil {
			t.Fatalf("evaluated an invitation that does not decode: %v", derr)
		}
		if m.Proofs != okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, m.Scope, m.Blinded[:])) {
			t.Fatal("evaluated without an approval of the element")
		}
		r, err := oprf.ParseRequest(m.Blinded[:])
		if err != nil {
			t.Fatal(err)
		}
		pt, err := oprf.ParsePartial(out)
		if err != nil || pt.ID() != 2 || pt.Verify(shares[2].Public(), r) != nil {
			t.Fatalf("bad partial: %v", err)
		}
	})
}
