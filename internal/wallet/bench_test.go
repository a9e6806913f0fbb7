package wallet

import (
	"encoding/binary"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// benchCluster is a 3-node cluster on real sockets with one account.
func benchCluster(b *testing.B) (*cluster, *user, common.Address) {
	b.Helper()
	authz := &fakeAuth{}
	c := newCluster(b, authz, nil)
	u := authz.newUser("app", "bench")
	addr := createAccount(b, c, 0, u)
	return c, u, addr
}

// signParams returns personal_sign params and proofs for message i.
func signParams(u *user, addr common.Address, i uint64) ([]any, string) {
	msg := binary.BigEndian.AppendUint64([]byte("bench "), i)
	params := []any{hexutil.Encode(msg), addr.Hex()}
	p, err := Prepare(api.MethodPersonalSign, mustJSON(params), nil)
	if err != nil {
		panic(err)
	}
	return params, u.approve(api.MethodPersonalSign, p.Hash())
}

// reportSplit reports where the time of the b.N signatures went, per
// signature: auth (Authorize on the gateway and the co-signer together),
// the gateway's signing session (DKLs23 compute of both parties plus the
// peer round trips), and params parsing.
func reportSplit(b *testing.B, c *cluster, start []statsSnap) {
	var auth, session, prep uint64
	for i, n := range c.nodes {
		s := n.svc.Stats()
		auth += s.AuthNanos.Load() - start[i].auth
		session += s.DKLs23Nanos.Load() - start[i].session
		prep += s.PrepNanos.Load() - start[i].prep
	}
	n := float64(b.N)
	b.ReportMetric(float64(auth)/n/1e3, "auth-µs/op")
	b.ReportMetric(float64(session)/n/1e3, "session-µs/op")
	b.ReportMetric(float64(prep)/n/1e3, "prep-µs/op")
}

type statsSnap struct{ auth, session, prep uint64 }

func snap(c *cluster) []statsSnap {
	out := make([]statsSnap, len(c.nodes))
	for i, n := range c.nodes {
		s := n.svc.Stats()
		out[i] = statsSnap{s.AuthNanos.Load(), s.DKLs23Nanos.Load(), s.PrepNanos.Load()}
	}
	return out
}

// BenchmarkSign is one personal_sign request through the cluster at a time:
// HTTP JSON-RPC to node 1, Authorize there, invitation to a co-signer over
// mTLS, Authorize there, the DKLs23 session over the peer links.
func BenchmarkSign(b *testing.B) {
	c, u, addr := benchCluster(b)
	reqs := make([][]any, b.N)
	proofs := make([]string, b.N)
	for i := range b.N {
		reqs[i], proofs[i] = signParams(u, addr, uint64(i))
	}
	start := snap(c)
	b.ResetTimer()
	for i := range b.N {
		if err := c.call(i%3, proofs[i], api.MethodPersonalSign, reqs[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportSplit(b, c, start)
}

// BenchmarkSignParallel is BenchmarkSign with 16 requests in flight, spread
// over the three nodes: throughput (sig/s) of the cluster.
func BenchmarkSignParallel(b *testing.B) {
	c, u, addr := benchCluster(b)
	reqs := make([][]any, b.N)
	proofs := make([]string, b.N)
	for i := range b.N {
		reqs[i], proofs[i] = signParams(u, addr, uint64(i))
	}
	start := snap(c)
	var next atomicCounter
	b.SetParallelism(8) // × GOMAXPROCS (2) = 16 clients
	t0 := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.inc()
			if err := c.call(int(i%3), proofs[i], api.MethodPersonalSign, reqs[i], nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "sig/s")
	reportSplit(b, c, start)
}

// BenchmarkDKLs23Compute is the pure protocol work of one 2-of-3 signature,
// both parties in one process, no network: the floor under BenchmarkSign.
func BenchmarkDKLs23Compute(b *testing.B) {
	shares, err := dkls23test.Keygen(2, 3, 1)
	if err != nil {
		b.Fatal(err)
	}
	digest := make([]byte, 32)
	signers := []round.PartyID{1, 2}
	b.ResetTimer()
	for i := range b.N {
		digest[0] = byte(i)
		if _, _, err := dkls23test.Sign(shares[:2], signers, digest, nil, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

type atomicCounter struct{ n atomic.Uint64 }

// inc returns 0, 1, 2, … across goroutines.
func (c *atomicCounter) inc() uint64 { return c.n.Add(1) - 1 }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
