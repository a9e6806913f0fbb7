package sign_test

import (
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// BenchmarkSign runs the whole signing protocol with all t signers in one
// process (mpctest.Run), including every party's final verification. It
// reports the bytes sent per party per signature (encoded round.Message,
// mean over the signers) and the total on the wire.
func BenchmarkSign(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			shares, err := dkls23test.Keygen(tc.t, tc.n, 1)
			if err != nil {
				b.Fatal(err)
			}
			signers := dkls23test.Parties(tc.t)
			digest := make([]byte, 32)
			var total int
			for b.Loop() {
				ss, err := dkls23test.SignSessions(shares, signers, digest, dkls23test.Nonce())
				if err != nil {
					b.Fatal(err)
				}
				res := mpctest.Run(ss, nil, 1)
				if err := res.Err(); err != nil {
					b.Fatal(err)
				}
				total = 0
				for _, n := range res.Bytes {
					total += n
				}
			}
			b.ReportMetric(float64(total)/float64(tc.t), "B/party/sig")
			b.ReportMetric(float64(total), "B/sig")
		})
	}
}

// BenchmarkSignConcurrent is BenchmarkSign with every party in its own
// goroutine (dkls23test.RunConcurrent): the latency of one signature when
// the parties work in parallel, as separate nodes do.
func BenchmarkSignConcurrent(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			shares, err := dkls23test.Keygen(tc.t, tc.n, 1)
			if err != nil {
				b.Fatal(err)
			}
			signers := dkls23test.Parties(tc.t)
			digest := make([]byte, 32)
			for b.Loop() {
				ss, err := dkls23test.SignSessions(shares, signers, digest, dkls23test.Nonce())
				if err != nil {
					b.Fatal(err)
				}
				if err := dkls23test.RunConcurrent(ss).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
