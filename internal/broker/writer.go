package broker

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

const (
	// writeTimeout bounds one write to a peer that has stopped reading; the connection is closed
	// when it passes.
	writeTimeout = 30 * time.Second
	// closeGrace is how long a closing connection may take to flush its last packets (the
	// DISCONNECT with the reason) before the socket is closed regardless.
	closeGrace = 2 * time.Second
	// maxSpareBuffer caps the write buffer kept between flushes, so one burst does not pin memory.
	maxSpareBuffer = 256 << 10
	// outBufSize is the size of the pooled write buffers (outBufs).
	outBufSize = 4 << 10
)

type outBuf [outBufSize]byte

// outBufs holds write buffers while their connections have nothing to send. A connection takes
// one when it queues a packet into an empty queue and gives its buffers back when its write
// loop has flushed everything and ends (issue 12): an idle connection holds no write buffer.
// A buffer that grew past outBufSize during a burst is left to the garbage collector instead.
var outBufs = sync.Pool{New: func() any { outBufsMade.Add(1); return new(outBuf) }}

// outBufsMade counts the write buffers ever allocated (tests, as readBufsMade).
var outBufsMade atomic.Uint64

// writeLoopsStarted counts the write loops ever started (tests).
var writeLoopsStarted atomic.Uint64

// takeOutBuf returns an empty pooled write buffer.
func takeOutBuf() []byte { return outBufs.Get().(*outBuf)[:0] }

// putOutBuf gives b back to outBufs when it is one of theirs.
func putOutBuf(b []byte) {
	if cap(b) == outBufSize {
		outBufs.Put((*outBuf)(b[:outBufSize]))
	}
}

// outQueue is a connection's outbound byte queue. Producers (this connection's read loop, and
// publishers' read loops delivering to it) encode packets straight into buf under mu; the write
// loop swaps buf for spare and writes the whole batch in one syscall, so writes are coalesced and
// steady-state delivery allocates nothing.
//
// The write loop runs only while there is something to write: the producer that queues into an
// empty queue with no write loop running starts one (poke), and the write loop ends, giving its
// buffers back to outBufs, once the queue has stayed empty for writerLinger. An idle connection holds
// neither a write goroutine nor a write buffer (issue 12). Both decisions are taken under mu, so
// a packet is never left in the queue with no write loop to send it.
type outQueue struct {
	mu      sync.Mutex
	buf     []byte // encoded packets waiting for the write loop
	spare   []byte // the previous batch's buffer, reused while the write loop runs
	limit   int    // bytes beyond which QoS 0 publishes are dropped and QoS 1/2 wait in the session
	closing bool   // no more packets are accepted; the write loop closes the socket once drained
	// writerOn is set by the read loop once CONNECT is answered: from then on producers start
	// the write loop. writing is set while a write loop runs (or is being started); parked
	// while it waits on wake with nothing to write, lingering before it ends (writeLoop).
	writerOn, writing, parked bool
	// readerCloses is set when the connection closed with nothing to write and no write loop
	// running: the read loop closes the socket and fires writerDone once it has ended (serve).
	readerCloses bool
	wake         chan struct{} // wakes a parked write loop; capacity 1; made by the first park
	// connacked is set once a successful CONNACK is queued: DISCONNECT may only follow it
	// [MQTT-3.14.0-1] and a PUBLISH never precedes it [MQTT-3.2.0-1].
	connacked      bool
	sentDisconnect bool   // a DISCONNECT with a reason code is queued: half-close and drain after it
	msgsOut        uint64 // PUBLISH packets queued (for $SYS), under mu

	// Outbound Topic Alias state (v5), per connection [MQTT-3.3.2-10]: topics get an alias in
	// order of first use until the client's Topic Alias Maximum is reached.
	aliasMax  uint16
	aliases   map[string]uint16
	nextAlias uint16

	ids []uint32 // scratch for Subscription Identifiers

	// The read path's one non-blocking write of a PINGRESP (pong): the function RawConn.Write
	// calls, bound on the connection's first PINGREQ so that later ones allocate nothing, and
	// what its write did.
	pongFn    func(fd uintptr) bool
	pongN     int32
	pongErrno uint32
}

// grow makes sure buf has a buffer to append to, taking a pooled one into an empty queue. mu held.
func (o *outQueue) grow() {
	if o.buf == nil {
		o.buf = takeOutBuf()
	}
}

// writerAction is what a producer must do once it has unlocked mu (poke).
type writerAction uint8

const (
	writerBusy  writerAction = iota // nothing: a write loop is running, or none may run yet
	writerStart                     // start a write loop
	writerWake                      // wake the parked write loop
)

// poke says what the caller must do, once it has unlocked mu, now that it has queued something
// or asked to close: start a write loop if none runs, wake it if it is parked. Nothing before
// the read loop has enabled the write loop (enableWriter). mu held.
func (o *outQueue) poke() writerAction {
	switch {
	case !o.writerOn || (len(o.buf) == 0 && !o.closing):
		return writerBusy
	case !o.writing && o.closing && len(o.buf) == 0:
		// Closing with nothing to write and no write loop running (a DISCONNECT from the
		// client, most often): the read loop closes the socket when it ends (serve), rather
		// than a write loop started only for that.
		o.writing, o.readerCloses = true, true
		return writerBusy
	case !o.writing:
		o.writing = true
		return writerStart
	case o.parked:
		o.parked = false
		return writerWake
	}
	return writerBusy
}

// act carries out what poke decided. Called without out.mu.
func (c *client) act(a writerAction) {
	switch a {
	case writerStart:
		writeLoopsStarted.Add(1)
		go c.writeLoopFn()
	case writerWake:
		select {
		case c.out.wake <- struct{}{}:
		default: // a wake is already pending
		}
	}
}

// releaseLocked gives the write buffers back; the queue is empty. mu held.
func (o *outQueue) releaseLocked() {
	putOutBuf(o.buf)
	putOutBuf(o.spare)
	o.buf, o.spare = nil, nil
}

// writeResult says what became of one PUBLISH offered to the out queue.
type writeResult uint8

const (
	written     writeResult = iota
	full                    // over the byte limit: QoS 0 is dropped, QoS 1/2 waits in the session
	tooLarge                // over the client's Maximum Packet Size: discarded as if sent [MQTT-3.1.2-25]
	closingConn             // the connection is going away
)

// send queues a control packet. Control packets are not subject to the byte limit: each one
// answers a packet the client sent, so the client's own rate bounds them.
func (c *client) send(p packet.Packet) bool {
	o := &c.out
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return false
	}
	o.grow()
	o.buf = packet.Append(o.buf, p, c.version)
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
	return true
}

// pingresp is PINGRESP's encoding, the same in every protocol version (3.13).
var pingresp = [2]byte{byte(packet.PINGRESP) << 4, 0}

// pong answers a PINGREQ [MQTT-3.12.4-1]; it is called by the read path. When no write loop runs
// and nothing is queued, which is a quiet device's keep-alive, the read path writes the PINGRESP
// itself in one non-blocking write: starting a write loop for two bytes costs a goroutine, its
// wake-ups while it lingers and its end, for every keep-alive of every idle device (issue 12).
// What the socket does not take at once goes to a write loop as usual, ahead of anything queued
// meanwhile; so do connections that are not sockets.
func (c *client) pong() {
	o := &c.out
	o.mu.Lock()
	if c.in.raw == nil || !o.writerOn || o.writing || o.closing || len(o.buf) > 0 {
		o.mu.Unlock()
		c.send(&packet.Pingresp{})
		return
	}
	o.writing = true // this goroutine is the writer until it hands over below
	if o.pongFn == nil {
		o.pongFn = c.rawPong
	}
	o.mu.Unlock()
	o.pongN, o.pongErrno = 0, 0
	err := c.in.raw.Write(o.pongFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A deadline an earlier writer set (the CONNACK's, a write loop's) has passed. This
		// write never waits, so it needs none; every writer sets its own before it writes.
		c.conn.SetWriteDeadline(time.Time{})
		o.pongN, o.pongErrno = 0, 0
		err = c.in.raw.Write(o.pongFn)
	}
	n := int(o.pongN)
	if err == nil && o.pongErrno != 0 && syscall.Errno(o.pongErrno) != errAgain {
		err = os.NewSyscallError("write", syscall.Errno(o.pongErrno))
	}
	c.bytesOut.Add(uint64(n))
	if err != nil {
		c.close(errWrite{err}, 0) // the read loop closes the socket once it ends (poke below)
	}
	o.mu.Lock()
	o.writing = false
	if n < len(pingresp) && !o.closing {
		// The socket's buffer is full (a client that stopped reading): the rest of the
		// PINGRESP goes first, then what producers queued while it was being written.
		rest := append(takeOutBuf(), pingresp[n:]...)
		rest = append(rest, o.buf...)
		putOutBuf(o.buf)
		o.buf = rest
	}
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
}

// rawPong is pong's RawConn.Write function: one non-blocking write of PINGRESP, never waiting for
// the socket to become writable; pong queues whatever part of it the socket did not take.
func (c *client) rawPong(fd uintptr) bool {
	n, errno := rawWrite(fd, pingresp[:])
	c.out.pongN, c.out.pongErrno = int32(n), uint32(errno)
	return true
}

// sendAck queues a PUBACK, PUBREC, PUBREL or PUBCOMP. Each type's Append is called on a value on
// the stack, so the per-message acknowledgement allocates nothing (send would box it).
func (c *client) sendAck(t packet.Type, pid uint16, code packet.ReasonCode) {
	o := &c.out
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return
	}
	o.grow()
	switch t {
	case packet.PUBACK:
		p := packet.Puback{PacketID: pid, ReasonCode: code}
		o.buf = p.Append(o.buf, c.version)
	case packet.PUBREC:
		p := packet.Pubrec{PacketID: pid, ReasonCode: code}
		o.buf = p.Append(o.buf, c.version)
	case packet.PUBREL:
		p := packet.Pubrel{PacketID: pid, ReasonCode: code}
		o.buf = p.Append(o.buf, c.version)
	case packet.PUBCOMP:
		p := packet.Pubcomp{PacketID: pid, ReasonCode: code}
		o.buf = p.Append(o.buf, c.version)
	}
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
}

// sendConnack queues the CONNACK and marks the connection as connected in one step, so no
// PUBLISH can be queued in front of it. The read loop writes it itself (flushSync).
func (c *client) sendConnack(p *packet.Connack) {
	o := &c.out
	o.mu.Lock()
	o.grow()
	o.buf = packet.Append(o.buf, p, c.version)
	o.connacked = p.ReasonCode == packet.Success
	o.mu.Unlock()
}

// writePublish encodes one delivery into the out queue. pid is 0 for QoS 0. The caller holds the
// session's mu (lock order session.mu → out.mu).
func (c *client) writePublish(d *delivery, pid uint16, dup bool, now int64) writeResult {
	o := &c.out
	o.mu.Lock()
	if o.closing || !o.connacked {
		o.mu.Unlock()
		return closingConn
	}
	if !dup && len(o.buf) >= o.limit {
		// Over the byte limit: the caller drops a QoS 0 message and queues a QoS 1/2 one in
		// its session. Retransmissions (dup) are already counted in the in-flight window.
		o.mu.Unlock()
		if d.qos == 0 {
			c.dropped(dropQueueFull) // counted and logged at a bounded rate
		}
		return full
	}
	m := d.msg
	if c.version != packet.V5 || (m.Props == nil && m.Expiry == 0 && d.subID == 0 && o.aliasMax == 0) {
		// No properties to send, what most deliveries are: a PublishHead, not a Publish's 344
		// bytes to fill in for every subscriber (the profile of fan-out showed it).
		h := packet.PublishHead{Topic: m.Topic, Payload: m.Payload, PacketID: pid, QoS: d.qos, Dup: dup, Retain: d.retain}
		if c.tooLarge(h.Size(c.version)) {
			o.mu.Unlock()
			c.dropped(dropTooLarge)
			return tooLarge
		}
		o.grow()
		o.buf = h.Append(o.buf, c.version)
		return o.queued(c)
	}
	p := packet.Publish{Dup: dup, QoS: d.qos, Retain: d.retain, Topic: m.Topic, PacketID: pid, Payload: m.Payload}
	if m.Props != nil {
		p.Props = *m.Props
	}
	if m.Expiry != 0 {
		p.Props.MessageExpiry, p.Props.HasMessageExpiry = m.remainingExpiry(now), true // [MQTT-3.3.2-6]
	}
	if d.subID != 0 { // [MQTT-3.3.4-3]
		o.ids = append(append(o.ids[:0], d.subID), d.subIDs...)
		p.Props.SubscriptionIDs = o.ids
	}
	if c.tooLarge(p.Size(c.version)) {
		o.mu.Unlock()
		c.dropped(dropTooLarge)
		return tooLarge
	}
	if o.aliasMax > 0 { // [MQTT-3.3.2-10]: aliases are ours to choose, up to the client's maximum
		if a, ok := o.aliases[m.Topic]; ok {
			p.Topic, p.Props.TopicAlias, p.Props.HasTopicAlias = "", a, true
		} else if o.nextAlias < o.aliasMax {
			o.nextAlias++
			o.aliases[m.Topic] = o.nextAlias
			p.Props.TopicAlias, p.Props.HasTopicAlias = o.nextAlias, true
		}
	}
	o.grow()
	o.buf = p.Append(o.buf, c.version)
	return o.queued(c)
}

// tooLarge reports whether a packet of size bytes exceeds the client's Maximum Packet Size: it
// is discarded as if sent [MQTT-3.1.2-24], [MQTT-3.1.2-25].
func (c *client) tooLarge(size int) bool { return c.maxPacketOut != 0 && size > int(c.maxPacketOut) }

// queued ends writePublish once the packet is in buf: counted, the write loop poked, mu
// released.
func (o *outQueue) queued(c *client) writeResult {
	o.msgsOut++
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
	return written
}

// dropped counts a message not delivered to the connection's session.
func (c *client) dropped(r dropReason) {
	if s := c.session(); s != nil {
		s.drop(r)
		return
	}
	c.vhost.stats.drop(r)
}

// enableWriter lets producers start the write loop, once CONNECT is answered, and starts it if
// something was queued (or a close asked for) meanwhile. Called by the read loop.
func (c *client) enableWriter() {
	o := &c.out
	o.mu.Lock()
	o.writerOn = true
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
}

// kickWriter starts or wakes the write loop if a close needs it. Safe from any goroutine.
func (c *client) kickWriter() {
	o := &c.out
	o.mu.Lock()
	a := o.poke()
	o.mu.Unlock()
	c.act(a)
}

// writeLoop is the connection's only writer, running while the connection is busy. It drains
// the out queue in batches: whatever accumulated while the previous write was in the kernel goes
// out in the next single write. When it finds the queue empty it parks (outQueue.parked) until a
// producer wakes it; once it has been idle for a whole writerLinger period it gives the buffers
// back and ends, and the next packet queued starts another (outQueue.poke). Starting a goroutine
// per batch would cost a busy connection more than the wake-up does. Once the connection is
// closing it flushes, closes the socket and fires writerDone.
func (c *client) writeLoop() {
	ended := true // writing is over for good: closed, failed or panicked
	defer func() {
		if ended {
			c.writerDone.fire()
		}
	}()
	defer c.recoverPanic("write loop")
	o := &c.out
	idleTicks := 0
	for {
		o.mu.Lock()
		o.parked = false
		buf, closing := o.buf, o.closing
		if len(buf) == 0 {
			if closing {
				sent := o.sentDisconnect
				o.releaseLocked()
				o.mu.Unlock()
				c.finish(sent)
				return
			}
			// Two ticks of the linger clock: idle for at least one whole period.
			tick := c.srv.linger.tick()
			if tick == nil || idleTicks >= 2 {
				o.writing = false
				o.releaseLocked()
				o.mu.Unlock()
				ended = false
				return
			}
			if o.wake == nil {
				// Made by the first park: a connection whose write loop never parks (every
				// login that only gets a CONNACK) makes none. poke sees parked, and so wake,
				// under mu.
				o.wake = make(chan struct{}, 1)
			}
			o.parked = true
			o.mu.Unlock()
			select {
			case <-o.wake:
				idleTicks = 0
			case <-tick:
				idleTicks++
			}
			continue
		}
		idleTicks = 0
		o.buf, o.spare = o.spare[:0], nil
		o.mu.Unlock()

		deadline := writeTimeout
		if closing {
			deadline = closeGrace
		}
		c.conn.SetWriteDeadline(time.Now().Add(deadline))
		n, err := c.conn.Write(buf)
		c.bytesOut.Add(uint64(n))
		if err != nil {
			c.close(errWrite{err}, 0)
			c.conn.Close()
			// Closing accepts nothing more (closeWith): the buffers go back to the pool.
			putOutBuf(buf)
			o.mu.Lock()
			o.releaseLocked()
			o.mu.Unlock()
			return
		}
		o.mu.Lock()
		if cap(buf) <= maxSpareBuffer {
			o.spare = buf[:0]
		}
		o.mu.Unlock()
		if s := c.session(); s != nil {
			s.drain(c) // the batch left room: move waiting QoS 1/2 messages into the window
		}
	}
}

// finish closes the socket once everything queued was written. After a DISCONNECT with a reason
// code the connection is half-closed and what the client still sends is read and discarded, for
// up to closeGrace or until it closes: closing a socket with unread data would reset it, and a
// client still writing (answering PUBRECs, say) would lose the DISCONNECT before reading it.
func (c *client) finish(sentDisconnect bool) {
	if hc, ok := c.conn.(interface{ CloseWrite() error }); ok && sentDisconnect {
		hc.CloseWrite()
		<-c.readDone.wait() // the read loop has stopped reading
		c.conn.SetReadDeadline(time.Now().Add(closeGrace))
		io.Copy(io.Discard, c.conn)
	}
	c.conn.Close()
}

type errWrite struct{ err error }

func (e errWrite) Error() string { return "write: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// writerLinger is how long a write loop with nothing to write stays parked before it ends: at
// least one period of the linger clock, at most two.
const writerLinger = 25 * time.Millisecond

// lingerClock ticks every writerLinger for every parked write loop and idle worker at once:
// each tick closes a channel and replaces it, so a waiter needs no timer of its own.
//
// The clock sleeps while nothing waits on it: a tick after a whole period in which no waiter took
// a channel stops the ticker, and the next waiter wakes it (kick). An idle broker then has no
// 25 ms wake-up (issue 12). The hand-over is two flags, each written by one side and read by the
// other after its own write (Go's atomics are sequentially consistent): tick sets wanted, then
// reads asleep; run sets asleep, then reads wanted. So either run sees the waiter and stays
// awake, or the waiter sees run asleep and kicks it; a kick run did not need costs one tick.
type lingerClock struct {
	ch     atomic.Pointer[chan struct{}] // nil until run starts, and after it stops
	wanted atomic.Bool                   // a waiter took a channel since the last tick
	asleep atomic.Bool                   // run waits for kick; its ticker is stopped
	kick   chan struct{}                 // capacity 1; made by run before ch is published
	ticks  atomic.Uint64                 // ticks so far (tests)
	sleeps atomic.Uint64                 // times it went to sleep (tests)
}

// tick returns the channel the next tick closes, nil when the clock does not run (the write
// loop then ends as soon as it is idle). It wakes a sleeping clock.
func (l *lingerClock) tick() <-chan struct{} {
	p := l.ch.Load()
	if p == nil {
		return nil
	}
	if !l.wanted.Load() { // one shared write per period, not one per waiter
		l.wanted.Store(true)
	}
	if l.asleep.Load() {
		select {
		case l.kick <- struct{}{}:
		default: // a kick is already pending
		}
	}
	return *p
}

// run ticks until stop is closed, sleeping while nothing waits, then wakes every waiter a last
// time.
func (l *lingerClock) run(stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	t := time.NewTicker(writerLinger)
	defer t.Stop()
	l.kick = make(chan struct{}, 1)
	ch := make(chan struct{})
	l.ch.Store(&ch)
	stopped := func() { // every waiter wakes, and later ones get nil
		old := l.ch.Swap(nil)
		close(*old)
	}
	for {
		select {
		case <-stop:
			stopped()
			return
		case <-t.C:
		}
		next := make(chan struct{})
		old := l.ch.Swap(&next)
		close(*old)
		l.ticks.Add(1)
		if l.wanted.Swap(false) {
			continue // someone waited during this period: they may wait for the next tick too
		}
		// A whole period without a waiter: everyone who waited has been woken. Sleep until
		// the next waiter, unless one came between the Swap above and asleep's store.
		select {
		case <-l.kick: // left by a waiter that saw an earlier, aborted sleep
		default:
		}
		l.asleep.Store(true)
		if l.wanted.Load() {
			l.asleep.Store(false)
			continue
		}
		t.Stop()
		l.sleeps.Add(1)
		select {
		case <-stop:
			stopped()
			return
		case <-l.kick:
		}
		l.asleep.Store(false)
		t.Reset(writerLinger) // the waiter's channel closes a whole period from now
	}
}
