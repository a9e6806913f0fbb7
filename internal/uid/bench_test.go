package uid

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/oprf"
)

// BenchmarkHandleEvaluate is one node's side of uid/evaluate/v1 with the
// share cached: decode the invitation, parse the element, ask the
// (stand-in) authorizer, take a rate token, evaluate with its DLEQ proof.
// Real auth adds its own cost (auth's benchmarks).
func BenchmarkHandleEvaluate(b *testing.B) {
	ctx := context.Background()
	s, _ := newTestService(b, 2, func(o *Options) { o.Rate, o.Burst = 1e12, 1<<30 })
	if err := s.save(ctx, sc1, keygen(b)[2]); err != nil {
		b.Fatal(err)
	}
	_, req, _ := oprf.BlindScoped(sc1, []byte("alice@example.com"))
	bl, _ := req.MarshalBinary()
	inv := api.UIDEvaluateInvite{Scope: sc1, Account: "alice", Proofs: okProofs(api.UIDOperationHash(api.MethodUIDEvaluate, sc1, bl))}
	copy(inv.Blinded[:], bl)
	body := inv.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.handleEvaluate(ctx, 1, body); err != nil {
			b.Fatal(err)
		}
	}
}
