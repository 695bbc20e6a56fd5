package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

const (
	// DefaultHeadroom is the garbage a broker may accumulate between collections while its live
	// heap is smaller than that.
	DefaultHeadroom = 16 << 20

	// basePercent is GOGC's default, and the floor's lowest setting.
	basePercent = 100
	// runtimeMinHeap is the runtime's minimum heap goal at GOGC 100 (heapMinimum); it scales with
	// GOGC.
	runtimeMinHeap = 4 << 20
)

// Percent is the GOGC that lets the heap grow headroom bytes past a heap whose collection scans
// scan bytes (live heap, stacks and globals), rounded up, never below 100 and never above
// headroom / 4 MiB × 100, where the runtime's own minimum heap goal reaches headroom.
func Percent(scan, headroom uint64) int {
	top := max(basePercent, int(headroom*100/runtimeMinHeap))
	if scan == 0 {
		return top
	}
	p := (headroom*100 + scan - 1) / scan
	if p >= uint64(top) {
		return top
	}
	return max(basePercent, int(p))
}

// Floor keeps GOGC at Percent of the last collection's scan size, from Start until Stop.
type Floor struct {
	headroom uint64
	prev     int // GOGC before Start, restored by Stop

	mu      sync.Mutex // serialises collected against Stop
	stopped bool
	samples [3]metrics.Sample
}

// sentinel is what the collector frees once per cycle. It is not a tiny allocation (those are
// batched, and their cleanups may never run) and holds no pointer.
type sentinel struct{ _ [32]byte }

// Start sets GOGC from the live heap after each collection so that the heap may grow at least
// headroom bytes between collections. It returns nil, and changes nothing, when GOGC is set in
// the environment (even to "off" or 100): the operator's choice stands.
func Start(headroom uint64) *Floor {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	f := &Floor{headroom: headroom}
	f.samples[0].Name = "/gc/heap/live:bytes"
	f.samples[1].Name = "/gc/scan/stack:bytes"
	f.samples[2].Name = "/gc/scan/globals:bytes"
	f.prev = debug.SetGCPercent(basePercent)
	f.collected() // from what is live now (the last cycle's figures), then once per cycle
	return f
}

// collected sets GOGC from the cycle that just ended and arms the next cycle's sentinel.
func (f *Floor) collected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	metrics.Read(f.samples[:])
	var scan uint64
	for _, s := range f.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			scan += s.Value.Uint64()
		}
	}
	debug.SetGCPercent(Percent(scan, f.headroom))
	runtime.AddCleanup(new(sentinel), func(f *Floor) { f.collected() }, f)
}

// Stop restores the GOGC of before Start; the next cycle's cleanup finds it stopped. Stop on a
// nil Floor (GOGC was set) does nothing.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.prev)
	}
}
