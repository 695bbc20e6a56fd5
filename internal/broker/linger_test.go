package broker

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// runLinger starts a linger clock; stop stops it and waits until it has (once, however often
// it is called).
func runLinger(tb testing.TB) (l *lingerClock, stop func()) {
	tb.Helper()
	l = &lingerClock{}
	stopCh := make(chan struct{})
	var done sync.WaitGroup
	done.Add(1)
	go l.run(stopCh, &done)
	for l.ch.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	return l, sync.OnceFunc(func() { close(stopCh); done.Wait() })
}

// startLinger runs a linger clock until the test ends.
func startLinger(t *testing.T) *lingerClock {
	t.Helper()
	l, stop := runLinger(t)
	t.Cleanup(stop)
	return l
}

// waitAsleep waits until the clock has stopped ticking, at most a second.
func waitAsleep(t *testing.T, l *lingerClock) {
	t.Helper()
	for end := time.Now().Add(time.Second); !l.asleep.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the linger clock still ticks with nothing waiting (%d ticks)", l.ticks.Load())
		}
	}
}

// The linger clock stops ticking once a whole period passed without a waiter, so an idle
// broker has no 25 ms wake-up (issue 12), and the next waiter wakes it: its channel is closed
// a period later, as if the clock had never slept.
func TestLingerClockSleepsWhileNothingWaits(t *testing.T) {
	l := startLinger(t)
	// A write loop's linger: two ticks, then it ends.
	for range 2 {
		<-l.tick()
	}
	waitAsleep(t, l)
	n := l.ticks.Load()
	time.Sleep(5 * writerLinger)
	if got := l.ticks.Load(); got != n {
		t.Fatalf("the clock ticked %d times while nothing waited", got-n)
	}

	start := time.Now()
	select {
	case <-l.tick():
	case <-time.After(time.Second):
		t.Fatal("a waiter on a sleeping clock was not woken within a second")
	}
	if took := time.Since(start); took < writerLinger/2 {
		// A waiter must wait about a whole period: a write loop that ended at once would pay
		// a goroutine per batch again.
		t.Fatalf("a waiter on a sleeping clock was woken after %v, before a period (%v)", took, writerLinger)
	}
	waitAsleep(t, l)
}

// Waiters that come at any moment, among them while the clock is deciding to sleep, are all
// woken: a waiter left on a channel that no tick closes would be a write loop or a worker parked
// for good. Run under -race in CI.
func TestLingerClockWakesEveryWaiter(t *testing.T) {
	l := startLinger(t)
	const waiters = 3
	end := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	waits, slowest := 0, time.Duration(0)
	for range waiters {
		wg.Go(func() {
			for time.Now().Before(end) {
				// Pauses of up to five periods, so the clock goes to sleep and wakes at many
				// different moments relative to the waiters.
				time.Sleep(time.Duration(rand.Int64N(int64(5 * writerLinger))))
				start := time.Now()
				select {
				case <-l.tick():
				case <-time.After(time.Second):
					t.Errorf("a waiter was not woken within a second (clock asleep: %v)", l.asleep.Load())
					return
				}
				mu.Lock()
				waits++
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d waits, the slowest %v; %d ticks, %d sleeps", waits, slowest, l.ticks.Load(), l.sleeps.Load())
	if l.sleeps.Load() < 10 {
		t.Fatalf("the clock slept %d times: the test did not exercise its sleeps", l.sleeps.Load())
	}
}

// Stopping the server wakes a waiter of a sleeping clock, and later waiters get no channel (they
// end at once).
func TestLingerClockStopsAsleep(t *testing.T) {
	l, stop := runLinger(t)
	defer stop()
	waitAsleep(t, l)
	ch := l.tick() // wakes the clock; stop races its next tick
	stop()
	select {
	case <-ch:
	default:
		t.Fatal("a waiter's channel was left open by a stopped clock")
	}
	if l.tick() != nil {
		t.Fatal("a stopped clock handed out a channel")
	}
}

// BenchmarkLingerTick is what a write loop or a worker pays for the clock each time it parks:
// the clock is awake under load, so tick is two atomic loads (and a store once per period).
func BenchmarkLingerTick(b *testing.B) {
	l, stop := runLinger(b)
	defer stop()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.tick() == nil {
				b.Error("no channel")
			}
		}
	})
}
