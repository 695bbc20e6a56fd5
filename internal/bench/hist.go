package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets, like HdrHistogram: values below 2^histBits
// nanoseconds have a bucket each, and every power-of-two range above that is split into
// 2^(histBits-1) equal buckets, so a reported value is within 1/2^(histBits-1) (0.8 %) of a
// recorded one. The buckets are a fixed array: Record never allocates. The zero Histogram is
// empty and ready; it is not safe for concurrent use (keep one per goroutine and Merge them).
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

const (
	histBits    = 8                   // precision: 2^(histBits-1) buckets per power of two
	histHalf    = 1 << (histBits - 1) // buckets per power of two above the linear range
	histMaxBits = 40                  // values up to 2^40 ns (about 18 minutes) are bucketed
	histBuckets = (histMaxBits-histBits+1)*histHalf + histHalf
	histMaxVal  = 1<<histMaxBits - 1
)

// bucketOf returns the bucket index of v (0 <= v <= histMaxVal).
func bucketOf(v uint64) int {
	shift := max(bits.Len64(v)-histBits, 0)
	return shift*histHalf + int(v>>shift)
}

// bucketRange returns the lowest and highest values that fall into bucket i.
func bucketRange(i int) (lo, hi uint64) {
	shift := max(i/histHalf-1, 0)
	lo = uint64(i-shift*histHalf) << shift
	return lo, lo + 1<<shift - 1
}

// Record adds one duration. Negative values count as 0; values beyond the last bucket go into it
// (Max still reports them exactly).
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
	h.counts[bucketOf(uint64(min(v, histMaxVal)))]++
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
	for i, n := range o.counts {
		h.counts[i] += n
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the average of the values recorded; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value below or at which a fraction q (0..1) of the values lie: the highest
// value of the bucket holding the ceil(q*count)-th smallest value, clamped to [Min, Max], and Max
// itself for the largest rank. It is 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	if rank == h.total {
		return time.Duration(h.max) // the largest value is kept exactly
	}
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			_, hi := bucketRange(i)
			return time.Duration(min(max(int64(hi), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }
