package heapfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		scan, headroom uint64
		want           int
	}{
		{0, 16 * mib, 400},       // nothing live yet: the most the floor allows
		{1 * mib, 16 * mib, 400}, // 1,600 % would be needed; the runtime's 16 MiB minimum covers it
		{4 * mib, 16 * mib, 400},
		{5 * mib, 16 * mib, 320},
		{6 * mib, 16 * mib, 267}, // rounded up: 266 % would fall short
		{8 * mib, 16 * mib, 200},
		{16 * mib, 16 * mib, 100},
		{1 << 30, 16 * mib, 100}, // a large heap: GOGC's default
		{1 * mib, 0, 100},
		{1 * mib, 4 * mib, 100}, // 4 MiB is the runtime's own minimum at 100
		{1 * mib, 64 * mib, 1600},
	} {
		if got := Percent(c.scan, c.headroom); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.scan, c.headroom, got, c.want)
		}
	}
}

// Every setting gives the headroom, unless the cap applies (where the runtime's minimum heap
// goal gives it), and none is higher than needed.
func TestPercentGivesTheHeadroomAndNoMore(t *testing.T) {
	for _, headroom := range []uint64{4 * mib, 16 * mib, 50 * mib} {
		top := max(100, int(headroom*100/runtimeMinHeap))
		for scan := uint64(1 << 16); scan < 1<<31; scan = scan*9/8 + 1 {
			p := Percent(scan, headroom)
			if p < 100 || p > top {
				t.Fatalf("Percent(%d, %d) = %d, outside [100, %d]", scan, headroom, p, top)
			}
			if p < top && scan*uint64(p)/100 < headroom-headroom/1000 && p != 100 {
				t.Fatalf("Percent(%d, %d) = %d gives %d bytes of headroom", scan, headroom, p, scan*uint64(p)/100)
			}
			if p > 100 && p < top && scan*uint64(p-1)/100 >= headroom {
				t.Fatalf("Percent(%d, %d) = %d, but %d already gives the headroom", scan, headroom, p, p-1)
			}
		}
	}
}

// unsetGOGC removes GOGC from the environment for the test (and puts it back after).
func unsetGOGC(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until cond holds or 5 s have passed: the floor's cleanup runs
// on its own goroutine after a cycle.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s of collections: %s; GOGC is %d", what, gogc())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

var retained []byte

func TestFloorFollowsTheLiveHeap(t *testing.T) {
	unsetGOGC(t)
	before := gogc()
	f := Start(16 * mib)
	if f == nil {
		t.Fatal("Start returned nil with GOGC unset")
	}
	// This test binary's live heap is well under 4 MiB: the cap.
	collectUntil(t, "GOGC 400 over a small heap", func() bool { return gogc() == 400 })

	// 48 MiB live: the default gives more than the headroom.
	retained = make([]byte, 48*mib)
	collectUntil(t, "GOGC 100 over a 48 MiB heap", func() bool { return gogc() == 100 })

	// 8 MiB live: twice the live heap is the headroom.
	retained = make([]byte, 8*mib)
	collectUntil(t, "GOGC between 150 and 200 over an 8 MiB heap", func() bool { g := gogc(); return g >= 150 && g <= 200 })

	// Each wait above saw GOGC move to a value only the floor sets, after a collection: the
	// floor followed the live heap at least three times.
	retained = nil
	collectUntil(t, "GOGC 400 once the heap is small again", func() bool { return gogc() == 400 })

	f.Stop()
	if g := gogc(); g != before {
		t.Errorf("GOGC after Stop = %d, want %d as before Start", g, before)
	}
	// Stopped, the floor changes nothing more.
	retained = make([]byte, 48*mib)
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	retained = nil
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if g := gogc(); g != before {
		t.Errorf("GOGC after Stop and more collections = %d, want %d", g, before)
	}
}

func TestOperatorsGOGCStands(t *testing.T) {
	for _, v := range []string{"150", "off", "100", ""} {
		t.Setenv("GOGC", v)
		before := gogc()
		if f := Start(16 * mib); f != nil {
			f.Stop()
			t.Errorf("GOGC=%q in the environment: Start installed a floor", v)
		}
		runtime.GC()
		if g := gogc(); g != before {
			t.Errorf("GOGC=%q: GOGC changed from %d to %d", v, before, g)
		}
	}
	var f *Floor
	f.Stop() // a nil floor: nothing to restore
}
