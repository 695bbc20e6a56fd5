package broker

import (
	"errors"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// pendingAck is a PUBACK or PUBREC held back until what its PUBLISH wrote to the store is durable:
// a QoS 1/2 message is acknowledged only once it is stored for every persistent session it was
// queued for, and in the retained store if retained (issue #4).
type pendingAck struct {
	ticket store.Ticket
	t      packet.Type
	pid    uint16
	code   packet.ReasonCode
}

// ack sends an acknowledgement once ticket is durable, and after every acknowledgement queued
// before it: PUBACKs and PUBRECs leave in the order their PUBLISH packets arrived [MQTT-4.6.0-2],
// [MQTT-4.6.0-3]. Tickets only grow, so the queue drains from the front.
func (c *client) ack(ticket store.Ticket, t packet.Type, pid uint16, code packet.ReasonCode) {
	st := c.store()
	c.ackMu.Lock()
	if len(c.acks) == 0 && (ticket == 0 || st.Durable(ticket)) {
		c.sendAck(t, pid, code)
		c.ackMu.Unlock()
		return
	}
	c.acks = append(c.acks, pendingAck{ticket: ticket, t: t, pid: pid, code: code})
	register := ticket > c.ackWaitingFor
	if register {
		c.ackWaitingFor = ticket
	}
	c.ackMu.Unlock()
	if register {
		st.Notify(ticket, c.flushAcksFn) // may run flushAcks at once, so called without ackMu
	}
}

// flushAcks sends the acknowledgements whose tickets are durable, from the front of the queue.
// It runs on the store's committer goroutine, or on the read loop.
func (c *client) flushAcks() {
	st := c.store()
	c.ackMu.Lock()
	i := 0
	for ; i < len(c.acks); i++ {
		a := &c.acks[i]
		if a.ticket != 0 && !st.Durable(a.ticket) {
			break
		}
		c.sendAck(a.t, a.pid, a.code)
	}
	n := copy(c.acks, c.acks[i:])
	clear(c.acks[n:])
	c.acks = c.acks[:n]
	c.ackMu.Unlock()
}

// waitDurable blocks until ticket is durable, then sends every acknowledgement held before it
// (their tickets are older). For the rare packets whose answer must follow their own write,
// such as SUBACK on a persistent session.
func (c *client) waitDurable(ticket store.Ticket) {
	if ticket == 0 {
		return
	}
	done := make(chan struct{})
	c.store().Notify(ticket, func() { close(done) })
	<-done
	c.flushAcks()
}

// limitPendingAcks bounds the acknowledgements held for the store to receive_maximum: a v5
// client with that many QoS 1/2 messages unacknowledged has exceeded the server's Receive
// Maximum (DISCONNECT 0x93 [MQTT-3.3.4-7]); a 3.1.1 client, which was told no limit, is slowed
// instead: the read loop waits until the held acknowledgements are durable and sent.
func (c *client) limitPendingAcks() error {
	c.ackMu.Lock()
	n, newest := len(c.acks), c.ackWaitingFor
	c.ackMu.Unlock()
	if n < c.srv.limits.ReceiveMax {
		return nil
	}
	if c.version == packet.V5 {
		return &packet.Error{Code: packet.ReceiveMaximumExceeded, Field: "PUBLISH",
			Err: errors.New("more QoS 1/2 messages unacknowledged than Receive Maximum")}
	}
	c.waitDurable(newest)
	return nil
}

func (c *client) store() store.Store {
	if p := c.srv.persist; p != nil {
		return p.st
	}
	return nil
}
