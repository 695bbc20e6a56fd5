package broker

import "sync/atomic"

// signal is a one-time event, like a channel closed once, whose channel is made only for a waiter
// that comes before the event. A connection has three (its write loop ended, its read loop
// stopped reading, its cleanup ran) and every CONNECT holds one while it claims its client id;
// nearly all of them pass with nobody waiting yet. As channels made up front they cost every
// connection 384 bytes, 288 of them held while it is idle, all collected after every login.
// fire and wait are safe from any goroutine and take no lock.
type signal struct{ p atomic.Pointer[signalChan] }

// signalChan holds the channel of a signal that was waited for before it fired.
type signalChan struct{ c chan struct{} }

// fired is what a signal points at once it has fired: a channel that is already closed.
var fired = func() *signalChan {
	c := make(chan struct{})
	close(c)
	return &signalChan{c: c}
}()

// fire marks the event as happened and wakes its waiters. Firing again does nothing.
func (s *signal) fire() {
	for {
		cur := s.p.Load()
		if cur == fired {
			return
		}
		if s.p.CompareAndSwap(cur, fired) {
			if cur != nil {
				close(cur.c)
			}
			return
		}
	}
}

// wait returns a channel that is closed once the event has happened (at once if it has).
func (s *signal) wait() <-chan struct{} {
	for {
		if cur := s.p.Load(); cur != nil {
			return cur.c
		}
		sc := &signalChan{c: make(chan struct{})}
		if s.p.CompareAndSwap(nil, sc) {
			return sc.c
		}
	}
}
