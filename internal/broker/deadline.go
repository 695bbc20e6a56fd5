package broker

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is a context that ends at a deadline and is never cancelled otherwise: the
// context of one CONNECT's login and of its claim on the client id. Most CONNECTs never wait
// on it (a login by verifier, no concurrent claim), so it makes its timer only when something
// asks for Done: context.WithTimeout made a context, a runtime timer and a cancel function for
// each, twice per CONNECT.
//
// Err is time-based: it returns context.DeadlineExceeded from the deadline on, possibly a
// moment before Done's channel is closed by the timer, never after.
type deadlineCtx struct {
	deadline time.Time
	once     sync.Once
	done     chan struct{} // made by the first Done; nil after stop
	timer    *time.Timer
}

func newDeadlineCtx(d time.Duration) *deadlineCtx {
	return &deadlineCtx{deadline: time.Now().Add(d)}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *deadlineCtx) Value(any) any               { return nil }

func (c *deadlineCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		done := make(chan struct{})
		c.done = done
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { close(done) })
	})
	return c.done
}

func (c *deadlineCtx) Err() error {
	if time.Now().Before(c.deadline) {
		return nil
	}
	return context.DeadlineExceeded
}

// stop releases the timer, if Done made one. Call it when whatever used the context is over:
// a Done after stop returns nil.
func (c *deadlineCtx) stop() {
	c.once.Do(func() {})
	if c.timer != nil {
		c.timer.Stop()
	}
}
