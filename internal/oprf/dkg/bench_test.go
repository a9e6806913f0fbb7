package dkg

import (
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/oprf"
)

// BenchmarkKeygen and BenchmarkRefresh run every party in one process: the
// figure is the total CPU of all n parties, without network.
func BenchmarkKeygen(b *testing.B) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("t=%d,n=%d", tn[0], tn[1]), func(b *testing.B) {
			for b.Loop() {
				ss, _ := NewKeygenSessions(parties(tn[1]), tn[0])
				if err := mpctest.Run(ss, nil, 1).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRefresh(b *testing.B) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		ss, _ := NewKeygenSessions(parties(tn[1]), tn[0])
		res := mpctest.Run(ss, nil, 1)
		old := make([]*oprf.KeyShare, tn[1])
		for p, o := range res.Outputs {
			old[p-1] = o.(*oprf.KeyShare)
		}
		b.Run(fmt.Sprintf("t=%d,n=%d", tn[0], tn[1]), func(b *testing.B) {
			for b.Loop() {
				ss, _ := NewRefreshSessions(old)
				if err := mpctest.Run(ss, nil, 1).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
