package broker

import (
	"errors"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// errStoreUnavailable closes a 3.1.1 connection whose QoS 1/2 PUBLISH (or UNSUBSCRIBE) could not
// be stored: 3.1.1 has no negative acknowledgement, and nothing is acknowledged that is not
// durable.
var errStoreUnavailable = errors.New("the store cannot write: not acknowledged")

// pendingAck is a PUBACK or PUBREC held back until what its PUBLISH wrote to the store is durable:
// a QoS 1/2 message is acknowledged only once it is stored for every persistent session it was
// queued for, and in the retained store if retained (issue #4).
type pendingAck struct {
	ticket   store.Ticket
	t        packet.Type
	pid      uint16
	code     packet.ReasonCode
	released bool // a refused PUBREC's inbound QoS 2 id was released
}

// ticketStatus is st.Status(t), for a broker that may keep no store.
func ticketStatus(st store.Store, t store.Ticket) (bool, error) {
	if t == 0 || st == nil {
		return true, nil
	}
	return st.Status(t)
}

// ack sends an acknowledgement once ticket is durable, and after every acknowledgement queued
// before it: PUBACKs and PUBRECs leave in the order their PUBLISH packets arrived [MQTT-4.6.0-2],
// [MQTT-4.6.0-3]. Tickets only grow, so the queue drains from the front. A ticket that fails
// (the store cannot write) is refused instead (see flushAcks).
func (c *client) ack(ticket store.Ticket, t packet.Type, pid uint16, code packet.ReasonCode) {
	st := c.store()
	c.ackMu.Lock()
	done, err := ticketStatus(st, ticket)
	if len(c.acks) == 0 && done && err == nil {
		c.sendAck(t, pid, code)
		c.ackMu.Unlock()
		return
	}
	c.acks = append(c.acks, pendingAck{ticket: ticket, t: t, pid: pid, code: code})
	register := !done && ticket > c.ackWaitingFor
	if register {
		c.ackWaitingFor = ticket
	}
	c.ackMu.Unlock()
	switch {
	case register:
		st.Notify(ticket, c.flushAcksFn) // may run flushAcks at once, so called without ackMu
	case done:
		c.flushAcks()
	}
}

// flushAcks sends the acknowledgements whose tickets are resolved, from the front of the queue.
// It runs on the store's committer goroutine, or on the read loop.
//
// A ticket that failed means what its PUBLISH wrote is not durable, so it is not acknowledged:
// a v5 client gets PUBACK or PUBREC 0x97 (Quota exceeded: the server cannot take the message
// now) [MQTT-3.4.2-1], [MQTT-3.5.2-1]; a refused PUBREC ends the QoS 2 flow (4.3.3), so its
// inbound packet id is released first. A 3.1.1 client, which has no negative acknowledgement,
// is disconnected without one: it sends the message again when it reconnects.
func (c *client) flushAcks() {
	st := c.store()
	for {
		var release uint16
		c.ackMu.Lock()
		i := 0
	scan:
		for ; i < len(c.acks); i++ {
			a := &c.acks[i]
			done, err := ticketStatus(st, a.ticket)
			switch {
			case !done:
				break scan
			case err != nil && c.version != packet.V5:
				c.close(errStoreUnavailable, 0)
				i = len(c.acks) // nothing more is sent on this connection
				break scan
			case err != nil && a.t == packet.PUBREC && !a.released:
				release = a.pid // lock order: session.mu is taken before ackMu, not under it
				break scan
			case err != nil:
				a.code = packet.QuotaExceeded
			}
			c.sendAck(a.t, a.pid, a.code)
		}
		n := copy(c.acks, c.acks[i:])
		clear(c.acks[n:])
		c.acks = c.acks[:n]
		c.ackMu.Unlock()
		if release == 0 {
			return
		}
		c.releaseQoS2(release)
		c.ackMu.Lock()
		if len(c.acks) > 0 && c.acks[0].t == packet.PUBREC && c.acks[0].pid == release {
			c.acks[0].released = true
		}
		c.ackMu.Unlock()
	}
}

// waitDurable blocks until ticket is resolved (durable or failed), sends every acknowledgement
// held before it (their tickets are older) and returns the ticket's error: nil when durable.
// For the rare packets whose answer must follow their own write, such as SUBACK on a
// persistent session.
func (c *client) waitDurable(ticket store.Ticket) error {
	st := c.store()
	if ticket == 0 || st == nil {
		return nil
	}
	done := make(chan struct{})
	st.Notify(ticket, func() { close(done) })
	<-done
	c.flushAcks()
	_, err := st.Status(ticket)
	return err
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

// storeDown returns why the store cannot write, or nil (also without a store): one atomic
// load, checked before a QoS 1/2 PUBLISH is routed.
func (c *client) storeDown() error {
	if p := c.srv.persist; p != nil {
		return p.st.Healthy()
	}
	return nil
}
