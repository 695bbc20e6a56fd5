package broker

import (
	"io"
	"sync"
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
)

// outQueue is a connection's outbound byte queue. Producers (this connection's read loop, and
// publishers' read loops delivering to it) encode packets straight into buf under mu; the write
// loop swaps buf for spare and writes the whole batch in one syscall, so writes are coalesced and
// steady-state delivery allocates nothing.
type outQueue struct {
	mu      sync.Mutex
	buf     []byte // encoded packets waiting for the write loop
	spare   []byte // the previous batch's buffer, reused
	limit   int    // bytes beyond which QoS 0 publishes are dropped and QoS 1/2 wait in the session
	closing bool   // no more packets are accepted; the write loop closes the socket once drained
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

	ids  []uint32 // scratch for Subscription Identifiers
	wake chan struct{}
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
	wasEmpty := len(o.buf) == 0
	o.buf = packet.Append(o.buf, p, c.version)
	o.mu.Unlock()
	if wasEmpty {
		c.wakeWriter()
	}
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
	wasEmpty := len(o.buf) == 0
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
	o.mu.Unlock()
	if wasEmpty {
		c.wakeWriter()
	}
}

// sendConnack queues the CONNACK and marks the connection as connected in one step, so no
// PUBLISH can be queued in front of it.
func (c *client) sendConnack(p *packet.Connack) {
	o := &c.out
	o.mu.Lock()
	o.buf = packet.Append(o.buf, p, c.version)
	o.connacked = p.ReasonCode == packet.Success
	o.mu.Unlock()
	c.wakeWriter()
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
	p := packet.Publish{Dup: dup, QoS: d.qos, Retain: d.retain, Topic: m.Topic, PacketID: pid, Payload: m.Payload}
	if c.version == packet.V5 {
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
	}
	size := p.Size(c.version)
	if c.maxPacketOut != 0 && size > int(c.maxPacketOut) {
		o.mu.Unlock()
		c.dropped(dropTooLarge)
		return tooLarge // [MQTT-3.1.2-24], [MQTT-3.1.2-25]
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
	wasEmpty := len(o.buf) == 0
	o.buf = p.Append(o.buf, c.version)
	o.msgsOut++
	o.mu.Unlock()
	if wasEmpty {
		c.wakeWriter()
	}
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

func (c *client) wakeWriter() {
	select {
	case c.out.wake <- struct{}{}:
	default:
	}
}

// writeLoop is the connection's only writer. It drains the out queue in batches: whatever
// accumulated while the previous write was in the kernel goes out in the next single write.
func (c *client) writeLoop() {
	defer close(c.writerDone)
	defer c.recoverPanic("write loop")
	o := &c.out
	for range o.wake {
		for {
			o.mu.Lock()
			buf, closing := o.buf, o.closing
			if len(buf) == 0 {
				sent := o.sentDisconnect
				o.mu.Unlock()
				if closing {
					c.finish(sent)
					return
				}
				break
			}
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
	c.conn.Close()
}

// finish closes the socket once everything queued was written. After a DISCONNECT with a reason
// code the connection is half-closed and what the client still sends is read and discarded, for
// up to closeGrace or until it closes: closing a socket with unread data would reset it, and a
// client still writing (answering PUBRECs, say) would lose the DISCONNECT before reading it.
func (c *client) finish(sentDisconnect bool) {
	if hc, ok := c.conn.(interface{ CloseWrite() error }); ok && sentDisconnect {
		hc.CloseWrite()
		<-c.readDone // the read loop has stopped reading
		c.conn.SetReadDeadline(time.Now().Add(closeGrace))
		io.Copy(io.Discard, c.conn)
	}
	c.conn.Close()
}

type errWrite struct{ err error }

func (e errWrite) Error() string { return "write: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }
