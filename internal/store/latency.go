package store

import (
	"sync/atomic"
	"time"
)

// CommitBuckets are the upper bounds, in seconds, of the store commit latency histogram.
var CommitBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// CommitHistogram counts group-commit durations into CommitBuckets without locks: pass its
// Observe as Options.OnCommit; metrics scrapes read Snapshot. The zero value is ready.
type CommitHistogram struct {
	counts [12]atomic.Uint64 // len(CommitBuckets)+1: the last is +Inf
	sumNs  atomic.Uint64
	total  atomic.Uint64
}

// Observe counts one commit that took d.
func (h *CommitHistogram) Observe(d time.Duration, _ bool) {
	s := d.Seconds()
	i := 0
	for i < len(CommitBuckets) && s > CommitBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
	h.total.Add(1)
}

// Snapshot returns the histogram: cumulative counts per bucket of CommitBuckets (Prometheus
// semantics), the sum in seconds and the count. A nil histogram reads all zero.
func (h *CommitHistogram) Snapshot() (cumulative []uint64, sum float64, count uint64) {
	if h == nil {
		h = &CommitHistogram{}
	}
	cumulative = make([]uint64, len(CommitBuckets))
	var acc uint64
	for i := range CommitBuckets {
		acc += h.counts[i].Load()
		cumulative[i] = acc
	}
	return cumulative, time.Duration(h.sumNs.Load()).Seconds(), h.total.Load()
}
