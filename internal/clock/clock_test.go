package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFakeRunsDueTimersOnly(t *testing.T) {
	c := NewFake(time.Unix(1000, 0))
	var a, b, stopped atomic.Int32
	c.AfterFunc(10*time.Second, func() { a.Add(1) })
	c.AfterFunc(20*time.Second, func() { b.Add(1) })
	s := c.AfterFunc(5*time.Second, func() { stopped.Add(1) })
	if !s.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Advance(10 * time.Second)
	c.Wait()
	if a.Load() != 1 || b.Load() != 0 || stopped.Load() != 0 {
		t.Fatalf("after 10s: a=%d b=%d stopped=%d, want 1 0 0", a.Load(), b.Load(), stopped.Load())
	}
	if c.Pending() != 1 {
		t.Fatalf("Pending = %d, want 1", c.Pending())
	}
	c.Advance(time.Hour)
	c.Wait()
	if b.Load() != 1 {
		t.Fatal("second timer did not run")
	}
}

func TestFakeHoldMakesTimersLate(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	var ran atomic.Bool
	c.AfterFunc(time.Second, func() { ran.Store(true) })
	c.Hold()
	c.Advance(5 * time.Second)
	c.Wait()
	if ran.Load() {
		t.Fatal("a held timer ran")
	}
	if got := c.Now(); got != time.Unix(5, 0) {
		t.Fatalf("Now = %v while held, want the advanced time", got)
	}
	c.Release()
	c.Wait()
	if !ran.Load() {
		t.Fatal("Release did not run the held timer")
	}
}
