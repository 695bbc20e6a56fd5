package broker

import (
	"sync"
	"testing"
	"time"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestSignal: a waiter that comes first gets a channel that the fire closes; one that comes
// after gets a closed channel without anything being made; firing twice does nothing.
func TestSignal(t *testing.T) {
	var s signal
	c := s.wait()
	if isClosed(c) || s.wait() != c {
		t.Fatal("before fire: the channel is closed, or a second waiter got another")
	}
	s.fire()
	if !isClosed(c) || !isClosed(s.wait()) {
		t.Fatal("after fire: a channel is open")
	}
	s.fire() // again: no panic

	var unwatched signal
	if n := testing.AllocsPerRun(100, func() {
		unwatched = signal{}
		unwatched.fire()
		<-unwatched.wait()
	}); n != 0 {
		t.Fatalf("a signal fired before anyone waited allocates %v times", n)
	}
}

// TestSignalRace: waiters and the fire race (run under -race in CI); every waiter is woken.
func TestSignalRace(t *testing.T) {
	for range 500 {
		var s signal
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				select {
				case <-s.wait():
				case <-time.After(10 * time.Second):
					t.Error("a waiter was not woken")
				}
			})
		}
		wg.Go(s.fire)
		wg.Wait()
	}
}
