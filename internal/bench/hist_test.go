package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value lands in a bucket whose range holds it, and buckets are contiguous.
	var prevHi uint64
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf(lo)=%d bucketOf(hi)=%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= histHalf*2 && float64(hi-lo+1)/float64(lo) > 1.0/histHalf+1e-12 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its values", i, lo, hi, histHalf)
		}
		prevHi = hi
	}
	if prevHi != histMaxVal {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, uint64(histMaxVal))
	}
}

func TestHistogramExactBelowLinearRange(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Count() != 100 || h.Min() != 1 || h.Max() != 100 || h.Mean() != 50 {
		t.Errorf("count %d min %v max %v mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramPercentilesWithinPrecision(t *testing.T) {
	// Log-normal-ish latencies from 10 µs to seconds; every quantile is within the bucket
	// precision of the exact order statistic.
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 200_000)
	var h Histogram
	for i := range vals {
		v := int64(10_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*50))
		vals[i] = v
		h.Record(time.Duration(v))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact) > float64(exact)/histHalf {
			t.Errorf("Quantile(%v) = %d, exact %d: off by more than 1/%d", q, got, exact, histHalf)
		}
	}
	if int64(h.Max()) != vals[len(vals)-1] || int64(h.Min()) != vals[0] {
		t.Errorf("max %v min %v, want %d %d", h.Max(), h.Min(), vals[len(vals)-1], vals[0])
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	var a, b, empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Max() != 0 || empty.Mean() != 0 {
		t.Error("empty histogram reports values")
	}
	a.Record(time.Millisecond)
	b.Record(-5)              // counts as 0
	b.Record(100 * time.Hour) // beyond the buckets: clamped, Max exact
	b.Record(3 * time.Millisecond)
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 4 || a.Min() != 0 || a.Max() != 100*time.Hour {
		t.Errorf("count %d min %v max %v", a.Count(), a.Min(), a.Max())
	}
	if got := a.Quantile(0.5); got < time.Millisecond || got > time.Millisecond+time.Millisecond/histHalf {
		t.Errorf("p50 = %v, want about 1ms", got)
	}
	if got := a.Quantile(1); got != 100*time.Hour {
		t.Errorf("p100 = %v, want the exact max", got)
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	d := time.Duration(1)
	if n := testing.AllocsPerRun(1000, func() { h.Record(d); d = d*3 + 7 }); n != 0 {
		t.Errorf("Record allocates %v times per call", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := new(Histogram)
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xFFFFF) * 97)
	}
}
