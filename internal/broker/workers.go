package broker

import "sync/atomic"

// Workers run the busy periods of the connections' read loops (readWork in client.go).
//
// A busy period runs on a goroutine other than the read loop's so that the read loop, which is
// what an idle connection keeps, waits on a small stack (readLoop). A new goroutine for every
// busy period started on the smallest stack and grew it two or three times on the way through
// a CONNECT and its login, or routing a PUBLISH, copying every frame each time: about 5% of the
// broker's CPU per login in a reconnect storm (docs/benchmarks.md), and the same growth on every
// wake-up of a quiet device. So a goroutine that ends a busy period waits a while for the next one, of any
// connection, on the stack it grew: under load busy periods follow each other and a worker's
// stack grows once, not once per period.
//
// The hand-over is an unbuffered channel: a busy period goes to a worker only if one is waiting
// at that moment; otherwise a new worker is started, so a busy period never waits for a worker
// and the number of workers never limits the number of busy periods. A worker that has waited
// three ticks of the linger clock (50 to 75 ms, writer.go) without work ends, as does
// every idle worker when the server stops: an idle broker keeps no worker and no grown stack.

// worker runs c's busy period, then those of other connections handed to it through workQ
// until it has waited long enough for one.
func (s *Server) worker(c *client) {
	workersStarted.Add(1)
	for c != nil {
		c.readWork() // recovers its own panics: the worker goes on
		c = s.nextWork()
	}
}

// nextWork waits for the next busy period handed over through workQ; nil when it waited two
// full ticks of the linger clock and part of a third, or the clock stopped (the server is
// closing).
func (s *Server) nextWork() *client {
	for idle := 0; idle < 3; idle++ {
		tick := s.linger.tick()
		if tick == nil {
			return nil
		}
		select {
		case c := <-s.workQ:
			return c
		case <-tick:
		}
	}
	return nil
}

// workersStarted counts the workers ever started (tests: busy periods reuse them).
var workersStarted atomic.Uint64
