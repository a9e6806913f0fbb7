package load

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is known to within a
// relative error of 2^-subBits (under 0.8%). This is the log-linear layout
// of HdrHistogram (Gil Tene), reduced to one fixed precision.
const subBits = 7

const subCount = 1 << subBits

// Histogram counts durations in log-linear buckets. Percentiles it reports
// are the upper bound of the bucket that holds the rank, capped at the
// largest value recorded, so they are never below the true value and at
// most 2^-7 of it above. The zero value is ready to use; it is not safe for
// concurrent use (the driver keeps one per worker and merges them).
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// bucket returns the index of the bucket that holds v (v ≥ 0, in ns).
// Values below subCount have a bucket each; above, bucket k of exponent e
// covers [2^e + k·2^(e-subBits), 2^e + (k+1)·2^(e-subBits)).
func bucket(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - 1 // 2^e ≤ v < 2^(e+1), e ≥ subBits
	shift := e - subBits
	k := int(v>>shift) - subCount // 0 ≤ k < subCount
	return subCount + shift*subCount + k
}

// upper returns the largest value that falls into bucket i.
func upper(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i - subCount) / subCount
	k := uint64((i-subCount)%subCount) + subCount
	return (k+1)<<shift - 1
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := bucket(uint64(d))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest observation (exact), or 0 when there is none.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest observation (exact), or 0 when there is none.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the arithmetic mean (exact), or 0 when there is none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method:
// the smallest recorded value v such that at least ⌈q·n⌉ observations are
// ≤ v, to the histogram's precision. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(upper(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}
