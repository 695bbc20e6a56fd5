package broker

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// handlePublish routes an inbound PUBLISH and acknowledges it (4.3).
func (c *client) handlePublish(p *packet.Publish) error {
	lim := &c.srv.limits
	v5 := c.version == packet.V5
	c.msgsIn.Add(1)
	if v5 && len(p.Props.SubscriptionIDs) > 0 { // [MQTT-3.3.4-6]
		return &packet.Error{Code: packet.ProtocolError, Field: "PUBLISH subscription identifier", Err: errors.New("sent by a client")}
	}
	if v5 && p.Props.HasTopicAlias {
		a := p.Props.TopicAlias
		if int(a) > lim.maxTopicAlias { // [MQTT-3.3.2-9]
			return &packet.Error{Code: packet.TopicAliasInvalid, Field: "PUBLISH topic alias", Err: errors.New("above Topic Alias Maximum")}
		}
		if p.Topic == "" {
			t, ok := c.aliasIn[a]
			if !ok {
				return &packet.Error{Code: packet.ProtocolError, Field: "PUBLISH topic alias", Err: errors.New("alias not set on this connection")}
			}
			p.Topic = t
		} else {
			if c.aliasIn == nil {
				c.aliasIn = make(map[uint16]string)
			}
			c.aliasIn[a] = p.Topic // [MQTT-3.3.2-12]
		}
	}
	if p.Retain && !lim.retainAvailable {
		return &packet.Error{Code: packet.RetainNotSupported, Field: "PUBLISH retain", Err: errors.New("retain_available is false")} // [MQTT-3.3.1-?]
	}
	var down error // the store cannot write: a QoS 1/2 message is refused before it is routed
	if p.QoS > 0 {
		if err := c.limitPendingAcks(); err != nil {
			return err
		}
		down = c.storeDown()
	}
	s := c.session()
	var ticket store.Ticket
	if p.QoS == 2 {
		s.mu.Lock()
		_, dup := s.inQoS2[p.PacketID]
		if !dup && down == nil {
			if len(s.inQoS2) >= lim.receiveMax { // [MQTT-3.3.4-7]
				s.mu.Unlock()
				return &packet.Error{Code: packet.ReceiveMaximumExceeded, Field: "PUBLISH", Err: errors.New("more QoS 2 messages in flight than Receive Maximum")}
			}
			s.inQoS2[p.PacketID] = struct{}{}
			if s.persistent() {
				ticket = c.srv.persist.st.PutInbound(c.vhost.name, s.id, p.PacketID)
			}
		}
		s.mu.Unlock()
		if dup { // already passed on: acknowledge again, do not deliver twice [MQTT-4.3.3-9]
			c.ack(0, packet.PUBREC, p.PacketID, packet.Success)
			return nil
		}
	}
	if down != nil {
		return c.refusePublish(p)
	}

	code := packet.Success
	if strings.HasPrefix(p.Topic, "$SYS/") || p.Topic == "$SYS" {
		// $SYS is the server's own tree; clients do not publish into it (4.7.2).
		code = packet.NotAuthorized
		c.logf(slog.LevelDebug, "publish to $SYS refused", "topic", p.Topic)
	} else if err := c.srv.sec.checker.CanPublish(c.identity, c.clientID, p.Topic); err != nil {
		// Refused: v5 PUBACK/PUBREC 0x87; 3.1.1 acknowledges without delivering, which
		// [MQTT-3.3.5-2] allows. Checked per PUBLISH, so a permission change applies at once.
		code = packet.NotAuthorized
		c.srv.deny(c, acl.Publish, p.Topic, err)
	} else {
		m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, origin: s}
		if v5 {
			m.Props = forwardProps(&p.Props)
			if p.Props.HasMessageExpiry {
				m.Expiry = time.Now().Add(time.Duration(p.Props.MessageExpiry) * time.Second).UnixNano()
			}
		}
		if c.vhost.publish(m, &c.rs) == 0 && v5 {
			code = packet.NoMatchingSubscribers
		}
		ticket = max(ticket, c.rs.ticket)
	}
	// The acknowledgement waits until what this message wrote to the store is durable.
	switch p.QoS {
	case 1:
		c.ack(ticket, packet.PUBACK, p.PacketID, code) // [MQTT-4.3.2-2]
	case 2:
		if code.IsError() {
			c.releaseQoS2(p.PacketID) // a PUBREC with an error ends the flow (4.3.3)
		}
		c.ack(ticket, packet.PUBREC, p.PacketID, code) // [MQTT-4.3.3-8]
	}
	return nil
}

// refusePublish answers a QoS 1/2 PUBLISH the store cannot make durable, before it is routed:
// v5 PUBACK or PUBREC 0x97 (Quota exceeded) [MQTT-3.4.2-1], [MQTT-3.5.2-1], in order behind
// the acknowledgements still held; 3.1.1 has no negative acknowledgement, so the connection
// closes without one and the client sends the message again when it reconnects.
func (c *client) refusePublish(p *packet.Publish) error {
	c.logf(slog.LevelDebug, "publish refused: the store cannot write", "topic", p.Topic, "qos", p.QoS)
	if c.version != packet.V5 {
		return errStoreUnavailable
	}
	t := packet.PUBACK
	if p.QoS == 2 {
		t = packet.PUBREC
	}
	c.ack(0, t, p.PacketID, packet.QuotaExceeded)
	return nil
}

func (c *client) releaseQoS2(pid uint16) bool {
	s := c.session()
	s.mu.Lock()
	_, ok := s.inQoS2[pid]
	delete(s.inQoS2, pid)
	if ok && s.persistent() {
		c.srv.persist.st.DeleteInbound(c.vhost.name, s.id, pid)
	}
	s.mu.Unlock()
	return ok
}

// handlePubrec answers PUBREC with PUBREL [MQTT-4.3.3-4]; an unknown packet id gets reason 0x92.
func (c *client) handlePubrec(p *packet.Pubrec) {
	known := c.session().acked(c, packet.PUBREC, p.PacketID, p.ReasonCode)
	if p.ReasonCode.IsError() {
		return // the flow ends here; no PUBREL
	}
	code := packet.Success
	if !known && c.version == packet.V5 {
		code = packet.PacketIdentifierNotFound
	}
	c.sendAck(packet.PUBREL, p.PacketID, code)
}

// handlePubrel releases an inbound QoS 2 packet id and answers PUBCOMP [MQTT-4.3.3-11].
func (c *client) handlePubrel(p *packet.Pubrel) {
	code := packet.Success
	if !c.releaseQoS2(p.PacketID) && c.version == packet.V5 {
		code = packet.PacketIdentifierNotFound
	}
	c.ack(0, packet.PUBCOMP, p.PacketID, code) // behind any PUBACK/PUBREC still waiting
}

// handleSubscribe adds the subscriptions, answers SUBACK [MQTT-3.8.4-1] and then sends the
// retained messages the Retain Handling options ask for.
//
// A persistent session's subscriptions are stored one record each, and SUBACK follows their
// durable write. One the store cannot write is refused: SUBACK 0x80 for its filter (3.8.4,
// 3.9.3), and the session is left as it was: nothing is granted that a restart would lose.
func (c *client) handleSubscribe(p *packet.Subscribe) error {
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	var retained []delivery
	type stored struct {
		i            int // filter index
		sub, prev    topic.Subscription
		hadPrev      bool
		ticket       store.Ticket
		retainedFrom int // its retained messages: retained[retainedFrom:retainedTo]
		retainedTo   int
	}
	var writes []stored
	var ticket store.Ticket
	now := time.Now().UnixNano()
	s := c.session()
	c.vhost.retainMu.Lock() // see Vhost.retainMu: retained messages are read with the subscription added
	s.mu.Lock()
	persist := s.persistent()
	var down error
	if persist {
		down = c.storeDown()
	}
	for i, r := range p.Subscriptions {
		group, filter, shared, err := topic.ParseShared(r.Filter)
		if err == nil && !shared {
			err = topic.ValidFilter(filter)
		}
		if err != nil {
			codes[i] = packet.TopicFilterInvalid // 0x80 for 3.1.1, mapped by the codec
			c.logf(slog.LevelDebug, "subscribe refused", "filter", r.Filter, "error", err.Error())
			continue
		}
		if err := c.srv.sec.checker.CanSubscribe(c.identity, c.clientID, r.Filter); err != nil {
			codes[i] = packet.NotAuthorized // v5 SUBACK 0x87; 3.1.1 0x80, mapped by the codec
			c.srv.deny(c, acl.Subscribe, r.Filter, err)
			continue
		}
		if shared && r.NoLocal {
			s.mu.Unlock()
			c.vhost.retainMu.Unlock()
			return &packet.Error{Code: packet.ProtocolError, Field: "SUBSCRIBE no local", Err: errors.New("no local set on a shared subscription")} // [MQTT-3.8.3-4]
		}
		if down != nil {
			codes[i] = packet.UnspecifiedError // 0x80: the subscription could not be stored
			c.logf(slog.LevelDebug, "subscribe refused: the store cannot write", "filter", r.Filter)
			continue
		}
		sub := topic.Subscription{Owner: s, Filter: filter, Group: group, QoS: r.QoS, NoLocal: r.NoLocal,
			RetainAsPublished: r.RetainAsPublished, RetainHandling: r.RetainHandling, ID: subID}
		prev, hadPrev := s.subs[subKey{group, filter}]
		existed := s.subscribeLocked(sub)   // a repeated filter replaces the subscription [MQTT-3.8.4-3]
		codes[i] = packet.ReasonCode(r.QoS) // every QoS is granted as asked [MQTT-3.8.4-6]
		from := len(retained)
		// Retained messages: Retain Handling 0 always, 1 only for a new subscription, 2 never
		// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]; never for a shared subscription
		// (4.8.2).
		if !shared && (r.RetainHandling == 0 || r.RetainHandling == 1 && !existed) {
			retained = c.vhost.retainedFor(sub, now, retained)
		}
		if persist {
			tk := s.putSubscriptionLocked(&sub) // one small record, however many the session has
			ticket = max(ticket, tk)
			writes = append(writes, stored{i: i, sub: sub, prev: prev, hadPrev: hadPrev, ticket: tk,
				retainedFrom: from, retainedTo: len(retained)})
		}
	}
	s.mu.Unlock()
	c.vhost.retainMu.Unlock()
	// A persistent session's SUBACK follows the durable write of its subscriptions; SUBACK is
	// queued before the retained messages are delivered.
	if c.waitDurable(ticket) != nil {
		st := c.store()
		s.mu.Lock()
		for _, w := range writes {
			if _, err := st.Status(w.ticket); err == nil {
				continue
			}
			codes[w.i] = packet.UnspecifiedError
			clear(retained[w.retainedFrom:w.retainedTo])
			k := subKey{w.sub.Group, w.sub.Filter}
			if cur, ok := s.subs[k]; ok && cur == w.sub && !s.ended {
				if w.hadPrev {
					s.subscribeLocked(w.prev)
				} else {
					s.unsubscribeLocked(w.sub.Group, w.sub.Filter)
				}
			}
			c.logf(slog.LevelDebug, "subscribe refused: the store could not write it", "filter", p.Subscriptions[w.i].Filter)
		}
		s.mu.Unlock()
	}
	c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	for _, d := range retained {
		if d.msg != nil {
			s.deliver(d, now)
		}
	}
	return nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK [MQTT-3.10.4-4], [MQTT-3.10.4-5].
//
// A persistent session's removals are stored (one record each) before UNSUBACK. One the store
// cannot write is not done: the subscription stays, and a v5 client gets UNSUBACK 0x80 for its
// filter (3.11.3); a 3.1.1 UNSUBACK has no reason codes, so that connection closes without one.
func (c *client) handleUnsubscribe(p *packet.Unsubscribe) {
	codes := make([]packet.ReasonCode, len(p.Filters))
	type removed struct {
		i      int
		sub    topic.Subscription
		ticket store.Ticket
	}
	var writes []removed
	var ticket store.Ticket
	failed := false // a removal the store could not write
	s := c.session()
	s.mu.Lock()
	var down error
	if s.persistent() {
		down = c.storeDown()
	}
	for i, f := range p.Filters {
		group, filter, _, err := topic.ParseShared(f)
		sub, exists := s.subs[subKey{group, filter}]
		switch {
		case err != nil:
			codes[i] = packet.TopicFilterInvalid
		case !exists:
			codes[i] = packet.NoSubscriptionExisted
		case down != nil:
			codes[i] = packet.UnspecifiedError // 0x80: the removal could not be stored
			failed = true
		default:
			_, tk := s.removeSubscriptionLocked(group, filter)
			codes[i] = packet.Success
			if tk != 0 {
				ticket = max(ticket, tk)
				writes = append(writes, removed{i: i, sub: sub, ticket: tk})
			}
		}
	}
	s.mu.Unlock()
	if c.waitDurable(ticket) != nil {
		st := c.store()
		s.mu.Lock()
		for _, w := range writes {
			if _, err := st.Status(w.ticket); err == nil {
				continue
			}
			failed = true
			codes[w.i] = packet.UnspecifiedError
			if _, ok := s.subs[subKey{w.sub.Group, w.sub.Filter}]; !ok && !s.ended {
				s.subscribeLocked(w.sub) // put back: the removal is not stored
			}
		}
		s.mu.Unlock()
	}
	if failed {
		c.logf(slog.LevelDebug, "unsubscribe refused: the store cannot write")
		if c.version != packet.V5 {
			c.close(errStoreUnavailable, 0)
			return
		}
	}
	c.send(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes})
}

// handleDisconnect ends the connection at the client's request. Reason 0x04 keeps the will;
// any other reason discards it [MQTT-3.14.4-3].
func (c *client) handleDisconnect(p *packet.Disconnect) error {
	if c.version == packet.V5 && p.Props.HasSessionExpiry {
		s := c.session()
		s.mu.Lock()
		if s.expiry == 0 && p.Props.SessionExpiry != 0 {
			s.mu.Unlock()
			return &packet.Error{Code: packet.ProtocolError, Field: "DISCONNECT session expiry interval",
				Err: errors.New("set on a session that had expiry 0")} // [MQTT-3.14.2-?]
		}
		s.expiry = p.Props.SessionExpiry
		if m := c.srv.limits.maxSessionExpiry; m > 0 && int64(s.expiry) > m {
			s.expiry = uint32(m)
		}
		if s.persistent() {
			s.saveLocked()
		}
		s.mu.Unlock()
	}
	c.willOnClose = c.version == packet.V5 && p.ReasonCode == packet.DisconnectWithWill
	c.close(errNormalClose, 0)
	return nil
}
