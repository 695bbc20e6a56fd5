package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// deadlineCtx behaves as context.WithTimeout's context for its users: the deadline, Err from
// the deadline on, Done closed once it has passed, derived contexts ended with it; before
// anything asks for Done it holds no timer, and after stop it makes none.
func TestDeadlineCtx(t *testing.T) {
	c := newDeadlineCtx(30 * time.Millisecond)
	if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond || c.Err() != nil || c.Value("k") != nil {
		t.Fatalf("fresh: deadline %v %v, err %v", d, ok, c.Err())
	}
	if c.timer != nil {
		t.Fatal("a timer before anything asked for Done")
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after Done: %v", c.Err())
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context outlived the deadline")
	}
	if !errors.Is(child.Err(), context.Canceled) && !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("derived Err: %v", child.Err())
	}

	s := newDeadlineCtx(time.Hour)
	s.Done()
	if s.timer == nil {
		t.Fatal("Done made no timer")
	}
	s.stop()
	if s.timer.Stop() {
		t.Fatal("stop left the timer running")
	}
	u := newDeadlineCtx(time.Hour)
	u.stop()
	if u.Done() != nil || u.timer != nil {
		t.Fatal("Done after stop made a timer")
	}
	if n := testing.AllocsPerRun(100, func() { newDeadlineCtx(time.Hour).stop() }); n > 1 {
		t.Fatalf("an unused deadline context costs %v allocations, want 1", n)
	}
}
