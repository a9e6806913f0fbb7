package keygen_test

import (
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
)

// BenchmarkKeygen runs the whole key generation (with the pairwise rvole
// setups) with all n parties in one process.
func BenchmarkKeygen(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			for b.Loop() {
				if _, err := dkls23test.Keygen(tc.t, tc.n, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefresh runs a refresh of a 2-of-3 key with all parties in one
// process.
func BenchmarkRefresh(b *testing.B) {
	shares, err := dkls23test.Keygen(2, 3, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("2-of-3", func(b *testing.B) {
		for b.Loop() {
			if _, err := dkls23test.Refresh(shares, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeygenConcurrent is BenchmarkKeygen with every party in its own
// goroutine (dkls23test.RunConcurrent).
func BenchmarkKeygenConcurrent(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(b *testing.B) {
			ps := dkls23test.Parties(tc.n)
			for b.Loop() {
				ss, err := dkls23test.KeygenSessions(tc.t, ps, dkls23test.Nonce())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := dkls23test.Shares(dkls23test.RunConcurrent(ss), ps); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
