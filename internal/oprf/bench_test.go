package oprf

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	circloprf "github.com/cloudflare/circl/oprf"
)

var benchInput = []byte("keymesh benchmark input: a hash of personal data")

// BenchmarkCircl is the single-server reference: circl's RFC 9497 OPRF
// (base mode) and VOPRF (base mode plus the DLEQ proof our nodes also make),
// ristretto255-SHA512.
func BenchmarkCircl(b *testing.B) {
	sk, _ := circloprf.GenerateKey(suite, rand.Reader)
	base := circloprf.NewServer(suite, sk)
	ver := circloprf.NewVerifiableServer(suite, sk)
	bc := circloprf.NewClient(suite)
	vc := circloprf.NewVerifiableClient(suite, sk.Public())

	b.Run("base/blind", func(b *testing.B) {
		for b.Loop() {
			bc.Blind([][]byte{benchInput})
		}
	})
	_, req, _ := bc.Blind([][]byte{benchInput})
	b.Run("base/evaluate", func(b *testing.B) {
		for b.Loop() {
			base.Evaluate(req)
		}
	})
	b.Run("base/finalize", func(b *testing.B) {
		fd, req, _ := bc.Blind([][]byte{benchInput})
		ev, _ := base.Evaluate(req)
		for b.Loop() {
			if _, err := bc.Finalize(fd, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verifiable/evaluate", func(b *testing.B) {
		for b.Loop() {
			ver.Evaluate(req)
		}
	})
	b.Run("verifiable/finalize", func(b *testing.B) {
		fd, req, _ := vc.Blind([][]byte{benchInput})
		ev, _ := ver.Evaluate(req)
		for b.Loop() {
			if _, err := vc.Finalize(fd, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("base/whole", func(b *testing.B) {
		for b.Loop() {
			fd, req, _ := bc.Blind([][]byte{benchInput})
			ev, _ := base.Evaluate(req)
			if _, err := bc.Finalize(fd, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verifiable/whole", func(b *testing.B) {
		for b.Loop() {
			fd, req, _ := vc.Blind([][]byte{benchInput})
			ev, _ := ver.Evaluate(req)
			if _, err := vc.Finalize(fd, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkThreshold is this package for t-of-n: Blind (client), Evaluate
// (one node: Z_i and its DLEQ proof), Finalize (client: t proof checks, the
// Lagrange combination and RFC 9497 Finalize), and the whole evaluation
// (blind, t node evaluations, finalize) in one process.
func BenchmarkThreshold(b *testing.B) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		shares := deal(b, g.RandomNonZeroScalar(rand.Reader), tn[0], seqIDs(tn[1]))
		set := shares[:tn[0]]
		pub := shares[0].Public()
		b.Run(fmt.Sprintf("t=%d,n=%d/blind", tn[0], tn[1]), func(b *testing.B) {
			for b.Loop() {
				Blind(benchInput)
			}
		})
		_, req, _ := Blind(benchInput)
		b.Run(fmt.Sprintf("t=%d,n=%d/evaluate-per-node", tn[0], tn[1]), func(b *testing.B) {
			for b.Loop() {
				if _, err := Evaluate(set[0], req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("t=%d,n=%d/finalize", tn[0], tn[1]), func(b *testing.B) {
			// Finalize is one-shot; prepare b.N states outside the timer.
			b.StopTimer()
			sts := make([]*BlindState, b.N)
			pss := make([][]*Partial, b.N)
			for i := range sts {
				var req *Request
				sts[i], req, _ = Blind(benchInput)
				pss[i] = evalAll(b, set, req)
			}
			b.StartTimer()
			for i := 0; i < b.N; i++ {
				if _, err := sts[i].Finalize(pub, pss[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("t=%d,n=%d/whole", tn[0], tn[1]), func(b *testing.B) {
			for b.Loop() {
				st, req, _ := Blind(benchInput)
				ps := make([]*Partial, len(set))
				for i, s := range set {
					ps[i], _ = Evaluate(s, req)
				}
				if _, err := st.Finalize(pub, ps); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRatio interleaves circl's single-server evaluation and ours in
// every iteration, so that load on a shared machine hits both alike, and
// reports the cost ratios as metrics:
//
//	node/circl-base       our Evaluate ÷ circl Server.Evaluate (no proof)
//	node/circl-voprf      our Evaluate ÷ circl VerifiableServer.Evaluate
//	whole/circl-base      blind + t Evaluates + Finalize ÷ circl's blind +
//	                      Evaluate + Finalize (base mode)
//	whole/circl-voprf     the same ÷ circl's VOPRF blind + Evaluate + Finalize
func BenchmarkRatio(b *testing.B) {
	sk, _ := circloprf.GenerateKey(suite, rand.Reader)
	base := circloprf.NewServer(suite, sk)
	ver := circloprf.NewVerifiableServer(suite, sk)
	bc := circloprf.NewClient(suite)
	vc := circloprf.NewVerifiableClient(suite, sk.Public())
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		shares := deal(b, g.RandomNonZeroScalar(rand.Reader), tn[0], seqIDs(tn[1]))
		set, pub := shares[:tn[0]], shares[0].Public()
		b.Run(fmt.Sprintf("t=%d,n=%d", tn[0], tn[1]), func(b *testing.B) {
			var dBase, dVer, dNode, dWholeBase, dWholeVer, dWhole time.Duration
			for b.Loop() {
				t0 := time.Now()
				fd, creq, _ := bc.Blind([][]byte{benchInput})
				t1 := time.Now()
				ev, _ := base.Evaluate(creq)
				t2 := time.Now()
				bc.Finalize(fd, ev)
				t3 := time.Now()
				vfd, vreq, _ := vc.Blind([][]byte{benchInput})
				t4 := time.Now()
				vev, _ := ver.Evaluate(vreq)
				t5 := time.Now()
				if _, err := vc.Finalize(vfd, vev); err != nil {
					b.Fatal(err)
				}
				t6 := time.Now()
				st, req, _ := Blind(benchInput)
				ps := make([]*Partial, len(set))
				var node time.Duration
				for i, s := range set {
					n0 := time.Now()
					ps[i], _ = Evaluate(s, req)
					node += time.Since(n0)
				}
				if _, err := st.Finalize(pub, ps); err != nil {
					b.Fatal(err)
				}
				t7 := time.Now()
				dBase += t2.Sub(t1)
				dVer += t5.Sub(t4)
				dNode += node / time.Duration(len(set))
				dWholeBase += t3.Sub(t0)
				dWholeVer += t6.Sub(t3)
				dWhole += t7.Sub(t6)
			}
			b.ReportMetric(float64(dNode)/float64(dBase), "node/circl-base")
			b.ReportMetric(float64(dNode)/float64(dVer), "node/circl-voprf")
			b.ReportMetric(float64(dWhole)/float64(dWholeBase), "whole/circl-base")
			b.ReportMetric(float64(dWhole)/float64(dWholeVer), "whole/circl-voprf")
		})
	}
}
