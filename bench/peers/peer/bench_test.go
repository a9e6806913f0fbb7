package peer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// benchSet is the comparison set with tss-lib's fixture pre-parameters.
func benchSet(b *testing.B) []Protocol {
	pre, err := TSSFixturePreParams(5)
	return Set(pre, err, testTimeout)
}

// skipOrFail skips a protocol that is not available in this build and
// fails on any other error.
func skipOrFail(b *testing.B, err error) {
	b.Helper()
	if errors.Is(err, ErrUnavailable) {
		b.Skip(err)
	}
	b.Fatal(err)
}

func benchName(p Protocol) string {
	name := strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(p.Name())
	return fmt.Sprintf("%s/%d-of-%d", name, p.T(), p.N())
}

// BenchmarkKeygen times one whole key generation (all n parties, in one
// process) per iteration. tss-lib's Paillier pre-parameters come from its
// test fixtures and are not timed; CMP generates its Paillier keys inside
// keygen. Slow: run with -benchtime 1x or 3x.
func BenchmarkKeygen(b *testing.B) {
	for _, p := range benchSet(b) {
		b.Run(benchName(p), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Keygen(); err != nil {
					skipOrFail(b, err)
				}
			}
		})
	}
}

// BenchmarkSign times one whole signing (the first t parties, in one
// process, full protocol with no presignature) per iteration, and reports
// the bytes all parties sent for it.
func BenchmarkSign(b *testing.B) {
	for _, p := range benchSet(b) {
		b.Run(benchName(p), func(b *testing.B) {
			k, err := p.Keygen()
			if err != nil {
				skipOrFail(b, err)
			}
			digest := make([]byte, 32)
			if _, err := rand.Read(digest); err != nil {
				b.Fatal(err)
			}
			var bytes int
			for b.Loop() {
				sig, err := p.Sign(k, digest)
				if err != nil {
					b.Fatal(err)
				}
				bytes = sig.Bytes
			}
			b.ReportMetric(float64(bytes), "B/sig")
		})
	}
}
