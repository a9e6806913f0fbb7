package replica

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkSubmit measures one Submit on a 3-node threshold-2 cluster on
// loopback sockets (quorum 2): a local apply with an Ed25519 check, a push
// to both peers, each verifying and storing it. Stores: SQLite, or
// PostgreSQL for every node with -run/-bench on the PG variant.
func BenchmarkSubmit(b *testing.B) {
	for _, bc := range []struct {
		name string
		pg   []int
	}{{"sqlite", nil}, {"postgres", []int{0, 1, 2}}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newClusterPG(b, bc.pg...)
			ctx := context.Background()
			var n atomic.Int64
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if err := c.nodes[0].r.Submit(ctx, c.rec(fmt.Sprintf("s%d=v", n.Add(1)))); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if err := c.nodes[i%3].r.Submit(ctx, c.rec(fmt.Sprintf("p%d=v", i))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
