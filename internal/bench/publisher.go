package bench

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// Batching: a publisher writes up to maxBatch messages, at most maxBatchBytes, per write.
const (
	maxBatch      = 256
	maxBatchBytes = 64 << 10
	// maxBacklog is how far, in time, a rate-limited publisher that fell behind catches up; what
	// is older is skipped (and shows as a sent rate below the offered one).
	maxBacklog = time.Second
	// minPace is the shortest sleep of a rate-limited publisher: above 1/minPace messages per
	// second it sends what came due in each tick as one batch, instead of spinning on timers
	// for single messages (which made the bench, not the broker, the bottleneck).
	minPace = 500 * time.Microsecond
)

// Packet identifier states of an unacknowledged QoS 1/2 message.
const (
	idFree      = iota
	idAwaitAck  // PUBLISH sent: waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
	idAwaitComp // PUBREL sent: waiting for PUBCOMP
)

// publisher is one publishing connection: write is its writer goroutine, read its reader.
type publisher struct {
	c      *conn
	clk    *clock
	index  int
	qos    byte
	rate   float64
	offset time.Duration // phase of this publisher's schedule, so publishers do not send in step

	tmpl  publishTemplate
	batch []byte // maxBatch copies of the template
	k     int    // messages per batch

	sent    atomic.Int64
	skipped int64 // scheduled messages given up after falling behind (writer-owned)

	// QoS 1/2 flow control. ids cycle through 1..len(state)-1, which is at least twice the window
	// so that a free id is found at once.
	window   int32
	inflight atomic.Int32
	freed    chan struct{} // signalled when the reader frees an id
	state    []atomic.Uint32
	stamps   []atomic.Int64 // send time per id, for the acknowledgement latency
	nextID   int

	// Owned by read until it returns.
	acked    atomic.Int64
	rejected int64      // PUBACK/PUBREC with an error reason code
	unknown  int64      // acknowledgements for ids not in flight
	hist     *Histogram // PUBLISH → PUBACK / PUBCOMP
	acks     []byte
	pubrel   ackTemplate

	werr, rerr error
}

func newPublisher(c *conn, clk *clock, cfg *Config, index int) (*publisher, error) {
	tmpl, err := newPublishTemplate(cfg.pubTopic(index), cfg.QoS, cfg.Size, uint32(index), c.v)
	if err != nil {
		return nil, err
	}
	p := &publisher{c: c, clk: clk, index: index, qos: cfg.QoS, rate: cfg.Rate, tmpl: tmpl,
		hist: new(Histogram), freed: make(chan struct{}, 1)}
	p.k = max(1, min(maxBatch, maxBatchBytes/len(tmpl.b)))
	if cfg.QoS > 0 {
		w := cfg.Inflight
		if c.receiveMax > 0 {
			w = min(w, c.receiveMax) // [MQTT-3.3.4-7]
		}
		p.window = int32(w)
		p.k = min(p.k, w)
		n := 1 << bits.Len(uint(2*w)) // > 2w
		n = min(n, 65536)
		p.state = make([]atomic.Uint32, n)
		p.stamps = make([]atomic.Int64, n)
		p.pubrel = newAckTemplate(packet.PUBREL, c.v)
	}
	p.batch = make([]byte, 0, p.k*len(tmpl.b))
	for range p.k {
		p.batch = append(p.batch, tmpl.b...)
	}
	if cfg.Rate > 0 && cfg.publishers() > 1 {
		p.offset = time.Duration(float64(time.Second) / cfg.Rate * float64(index) / float64(cfg.publishers()))
	}
	return p, nil
}

// allocID returns a free packet identifier. Writer goroutine only.
func (p *publisher) allocID() uint16 {
	for {
		p.nextID++
		if p.nextID >= len(p.state) {
			p.nextID = 1
		}
		if p.state[p.nextID].Load() == idFree {
			return uint16(p.nextID)
		}
	}
}

// write publishes from start until end (or until stop is closed), at the configured rate.
func (p *publisher) write(start, end time.Time, stop <-chan struct{}, closing *atomic.Bool) {
	err := p.writeLoop(start, end, stop)
	if err != nil && !closing.Load() {
		p.werr = err
	}
}

func (p *publisher) writeLoop(start, end time.Time, stop <-chan struct{}) error {
	var (
		sched  int64 // schedule slots used: sent + skipped
		seq    uint32
		timer  = time.NewTimer(time.Hour)
		L      = len(p.tmpl.b)
		po     = p.tmpl.payloadOff
		rate   = p.rate
		period = time.Duration(0)
		ends   = time.NewTimer(time.Until(end))
	)
	timer.Stop()
	defer timer.Stop()
	defer ends.Stop()
	if rate > 0 {
		period = time.Duration(float64(time.Second) / rate)
	}
	wait := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-timer.C:
			return true
		case <-stop:
			return false
		case <-ends.C:
			return false
		}
	}
	if !wait(time.Until(start.Add(p.offset))) {
		return nil
	}
	start = start.Add(p.offset)
	for {
		now := time.Now()
		if !now.Before(end) {
			return nil
		}
		n := p.k
		if rate > 0 {
			el := now.Sub(start)
			due := int64(el.Seconds()*rate) + 1 - sched
			if due <= 0 {
				next := start.Add(time.Duration(sched) * period)
				if !wait(max(next.Sub(now), minPace)) {
					return nil
				}
				continue
			}
			if backlog := int64(maxBacklog.Seconds() * rate); due > backlog && backlog > 0 {
				p.skipped += due - backlog
				sched += due - backlog
				due = backlog
			}
			n = int(min(int64(n), due))
		}
		if p.qos > 0 {
			free := p.window - p.inflight.Load()
			if free <= 0 {
				select {
				case <-p.freed:
				case <-stop:
					return nil
				case <-ends.C:
					return nil
				}
				continue
			}
			n = min(n, int(free))
		}
		stamp := p.clk.now()
		b := p.batch[:n*L]
		if p.qos > 0 {
			p.inflight.Add(int32(n)) // before the write: the reader may see the ack at once
		}
		for j := range n {
			m := b[j*L : (j+1)*L]
			binary.BigEndian.PutUint64(m[po+offStamp:], uint64(stamp))
			binary.BigEndian.PutUint32(m[po+offSeq:], seq)
			seq++
			if p.qos > 0 {
				id := p.allocID()
				binary.BigEndian.PutUint16(m[p.tmpl.pidOff:], id)
				p.stamps[id].Store(stamp)
				p.state[id].Store(idAwaitAck)
			}
		}
		if err := p.c.write(b); err != nil {
			return err
		}
		sched += int64(n)
		p.sent.Add(int64(n))
	}
}

// read handles the acknowledgements of a QoS 1/2 publisher (and drains anything a QoS 0
// publisher is sent) until the connection fails or is closed.
func (p *publisher) read(closing *atomic.Bool) {
	err := p.readLoop()
	if !closing.Load() {
		p.rerr = err
	}
}

func (p *publisher) readLoop() error {
	c := p.c
	for {
		if len(p.acks) > 0 && (c.buffered() == 0 || len(p.acks) >= maxPendingAcks) {
			if err := c.write(p.acks); err != nil {
				return err
			}
			p.acks = p.acks[:0]
		}
		h, body, err := c.next()
		if err != nil {
			return err
		}
		switch h.Type {
		case packet.PUBACK, packet.PUBREC, packet.PUBCOMP:
			id, code, err := ackID(body)
			if err != nil {
				return err
			}
			p.ack(h.Type, id, code, c.readAt())
		case packet.DISCONNECT:
			return disconnected(h, body, c.v)
		case packet.PINGRESP:
		default:
			return fmt.Errorf("unexpected %s from the broker on a publishing connection", h.Type)
		}
	}
}

// ack advances the flow of packet id on PUBACK, PUBREC or PUBCOMP, received at now.
func (p *publisher) ack(t packet.Type, id uint16, code packet.ReasonCode, now int64) {
	if int(id) >= len(p.state) {
		p.unknown++
		return
	}
	st := &p.state[id]
	switch {
	case t == packet.PUBREC && code.IsError(), // the QoS 2 flow ends on an error PUBREC [MQTT-4.3.3-4]
		t == packet.PUBACK && code.IsError():
		if !st.CompareAndSwap(idAwaitAck, idFree) {
			p.unknown++
			return
		}
		p.rejected++
	case t == packet.PUBREC:
		if !st.CompareAndSwap(idAwaitAck, idAwaitComp) {
			if st.Load() != idAwaitComp {
				p.unknown++
				return
			}
		}
		p.acks = p.pubrel.append(p.acks, id) // [MQTT-4.3.3-4], again for a repeated PUBREC
		return
	case t == packet.PUBACK && p.qos == 1, t == packet.PUBCOMP && p.qos == 2:
		from := uint32(idAwaitAck)
		if t == packet.PUBCOMP {
			from = idAwaitComp
		}
		if !st.CompareAndSwap(from, idFree) {
			p.unknown++
			return
		}
		p.hist.Record(time.Duration(now - p.stamps[id].Load()))
		p.acked.Add(1)
	default:
		p.unknown++
		return
	}
	p.inflight.Add(-1)
	select {
	case p.freed <- struct{}{}:
	default:
	}
}
