package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock tells the time and runs functions later.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the timer is stopped.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started, and reports whether it did.
	Stop() bool
}

// Real is the system clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or returns c, or Real when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Fake is a Clock that moves only when told. Timers due at or before the new time run, in due
// order, when Advance or Set passes them; each runs in its own goroutine, as with time.AfterFunc,
// and Advance waits for none of them. Hold, Release and Wait give a test control of when the
// timers run. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	held   bool // timers that come due are not started until Release
	due    []*fakeTimer
	wg     sync.WaitGroup
}

// NewFake returns a Fake clock reading t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

type fakeTimer struct {
	c       *Fake
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. A d <= 0 runs f at once (in its own goroutine).
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	run := c.collectLocked()
	c.mu.Unlock()
	c.start(run)
	return t
}

// Stop implements Timer.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

// Advance moves the clock forward by d and starts every timer that has come due.
func (c *Fake) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and starts every timer that has come due.
func (c *Fake) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	run := c.collectLocked()
	c.mu.Unlock()
	c.start(run)
}

// Hold keeps timers that come due from starting until Release: a test can then make a
// scheduler late on purpose (a timer that fires after the work it should have prevented).
func (c *Fake) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Release starts the timers held back by Hold, in due order, and stops holding.
func (c *Fake) Release() {
	c.mu.Lock()
	c.held = false
	run := append(c.due, c.collectLocked()...)
	c.due = nil
	c.mu.Unlock()
	c.start(run)
}

// Wait blocks until every timer function started so far has returned.
func (c *Fake) Wait() { c.wg.Wait() }

// Pending returns how many timers are neither stopped nor fired.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n + len(c.due)
}

// collectLocked removes the due timers and returns them in due order, or keeps them aside
// while held. mu held.
func (c *Fake) collectLocked() []*fakeTimer {
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.fired = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	clear(c.timers[len(keep):])
	c.timers = keep
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	if c.held {
		c.due = append(c.due, due...)
		return nil
	}
	return due
}

func (c *Fake) start(run []*fakeTimer) {
	for _, t := range run {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			t.f()
		}()
	}
}
