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
		if int(a) > lim.MaxTopicAlias { // [MQTT-3.3.2-9]
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
	if p.Retain && !lim.RetainAvailable {
		return &packet.Error{Code: packet.RetainNotSupported, Field: "PUBLISH retain", Err: errors.New("retain_available is false")} // [MQTT-3.2.2-14], 3.3.1.3: DISCONNECT 0x9A
	}
	if p.QoS > 0 {
		if err := c.limitPendingAcks(); err != nil {
			return err
		}
	}
	s := c.session()
	var ticket store.Ticket
	if p.QoS == 2 {
		dup, t, err := c.acceptQoS2(s, p.PacketID)
		if err != nil {
			return err
		}
		if dup { // already passed on: acknowledge again, do not deliver twice [MQTT-4.3.3-9]
			c.ack(0, packet.PUBREC, p.PacketID, packet.Success)
			return nil
		}
		ticket = t
	}

	code := packet.Success
	if strings.HasPrefix(p.Topic, "$SYS/") || p.Topic == "$SYS" {
		// $SYS is the server's own tree; clients do not publish into it (4.7.2).
		code = packet.NotAuthorized
		c.logf(slog.LevelDebug, "publish to $SYS refused", "topic", p.Topic)
	} else if err := c.srv.opts.Authorizer.CanPublish(c.identity, c.clientID, p.Topic); err != nil {
		// Refused: v5 PUBACK/PUBREC 0x87; 3.1.1 acknowledges without delivering, which
		// [MQTT-3.3.5-2] allows. Checked per PUBLISH, so a permission change applies at once.
		code = packet.NotAuthorized
		c.srv.deny(c, acl.Publish, p.Topic, err)
	} else if !c.reserveRetained(p) { // a vhost's max-retained (limits.go)
		code = packet.QuotaExceeded // v5 PUBACK/PUBREC 0x97; 3.1.1 acknowledged, neither stored nor delivered
	} else {
		m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, origin: s}
		if v5 {
			m.Props = forwardProps(&p.Props)
			if p.Props.HasMessageExpiry {
				m.Expiry = c.srv.now().Add(time.Duration(p.Props.MessageExpiry) * time.Second).UnixNano()
			}
		}
		if c.vhost.publish(m, &c.rs) == 0 && v5 {
			code = packet.NoMatchingSubscribers
		}
		c.releaseRetained(p)
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

// acceptQoS2 records an inbound QoS 2 packet id until PUBREL [MQTT-4.3.3-10] and reports
// whether it was already recorded (a repeated PUBLISH).
func (c *client) acceptQoS2(s *session, pid uint16) (dup bool, t store.Ticket, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup = s.inQoS2[pid]; dup {
		return true, 0, nil
	}
	if len(s.inQoS2) >= c.srv.limits.ReceiveMax { // [MQTT-3.3.4-7]
		return false, 0, &packet.Error{Code: packet.ReceiveMaximumExceeded, Field: "PUBLISH", Err: errors.New("more QoS 2 messages in flight than Receive Maximum")}
	}
	s.inQoS2[pid] = struct{}{}
	if s.persistent() {
		t = c.srv.persist.st.PutInbound(c.vhost.name, s.id, pid)
	}
	return false, t, nil
}

func (c *client) releaseQoS2(pid uint16) bool {
	s := c.session()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inQoS2[pid]
	delete(s.inQoS2, pid)
	if ok && s.persistent() {
		c.srv.persist.st.DeleteInbound(c.vhost.name, s.id, pid)
	}
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
func (c *client) handleSubscribe(p *packet.Subscribe) error {
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	now := c.srv.now().UnixNano()
	s := c.session()
	retained, ticket, err := c.subscribe(s, p, subID, codes, now)
	if err != nil {
		return err
	}
	// A persistent session's SUBACK follows the durable write of its subscriptions; SUBACK is
	// queued before the retained messages are delivered.
	c.waitDurable(ticket)
	c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	for _, d := range retained {
		s.deliver(d, now)
	}
	return nil
}

// testHookLocked, set only by tests, runs in SUBSCRIBE with the vhost's retainMu and the
// session's mu held: a panic there proves that recovery leaves no lock held.
var testHookLocked func(*client)

// subscribe adds the subscriptions of p to s, filling codes, and returns the retained messages
// to send and the store ticket SUBACK waits for. It holds the vhost's retainMu and s.mu, both
// released by defers.
func (c *client) subscribe(s *session, p *packet.Subscribe, subID uint32, codes []packet.ReasonCode, now int64) ([]delivery, store.Ticket, error) {
	var retained []delivery
	c.vhost.retainMu.Lock() // see Vhost.retainMu: retained messages are read with the subscription added
	defer c.vhost.retainMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if testHookLocked != nil {
		testHookLocked(c) // tests: a panic here holds retainMu and s.mu
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
		if err := c.srv.opts.Authorizer.CanSubscribe(c.identity, c.clientID, r.Filter); err != nil {
			codes[i] = packet.NotAuthorized // v5 SUBACK 0x87; 3.1.1 0x80, mapped by the codec
			c.srv.deny(c, acl.Subscribe, r.Filter, err)
			continue
		}
		if shared && r.NoLocal {
			return nil, 0, &packet.Error{Code: packet.ProtocolError, Field: "SUBSCRIBE no local", Err: errors.New("no local set on a shared subscription")} // [MQTT-3.8.3-4]
		}
		if s.ended {
			codes[i] = packet.UnspecifiedError // the session was ended under this closing connection
			continue
		}
		if c.overSubscriptionLimit(s, group, filter) { // limits.go
			codes[i] = packet.QuotaExceeded // v5 SUBACK 0x97; 3.1.1 0x80, mapped by the codec
			continue
		}
		sub := topic.Subscription{Owner: s, Filter: filter, Group: group, QoS: r.QoS, NoLocal: r.NoLocal,
			RetainAsPublished: r.RetainAsPublished, RetainHandling: r.RetainHandling, ID: subID}
		existed := s.subscribeLocked(sub)   // a repeated filter replaces the subscription [MQTT-3.8.4-3]
		codes[i] = packet.ReasonCode(r.QoS) // every QoS is granted as asked [MQTT-3.8.4-6]
		// Retained messages: Retain Handling 0 always, 1 only for a new subscription, 2 never
		// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]; never for a shared subscription
		// (4.8.2).
		if !shared && (r.RetainHandling == 0 || r.RetainHandling == 1 && !existed) {
			retained = c.vhost.retainedFor(sub, now, retained)
		}
	}
	var ticket store.Ticket
	if s.persistent() {
		ticket = s.saveLocked()
	}
	return retained, ticket, nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK [MQTT-3.10.4-4], [MQTT-3.10.4-5].
func (c *client) handleUnsubscribe(p *packet.Unsubscribe) {
	codes := make([]packet.ReasonCode, len(p.Filters))
	ticket := c.unsubscribe(c.session(), p.Filters, codes)
	c.waitDurable(ticket)
	c.send(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes})
}

// unsubscribe removes filters from s, filling codes, and returns the store ticket UNSUBACK
// waits for. s.mu is released by a defer.
func (c *client) unsubscribe(s *session, filters []string, codes []packet.ReasonCode) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range filters {
		group, filter, _, err := topic.ParseShared(f)
		switch {
		case err != nil:
			codes[i] = packet.TopicFilterInvalid
		case s.unsubscribeLocked(group, filter):
			codes[i] = packet.Success
		default:
			codes[i] = packet.NoSubscriptionExisted
		}
	}
	if s.persistent() {
		return s.saveLocked()
	}
	return 0
}

// handleDisconnect ends the connection at the client's request. Reason 0x04 keeps the will;
// any other reason discards it [MQTT-3.14.4-3].
func (c *client) handleDisconnect(p *packet.Disconnect) error {
	if c.version == packet.V5 && p.Props.HasSessionExpiry {
		if err := c.setSessionExpiry(p.Props.SessionExpiry); err != nil {
			return err
		}
	}
	c.willOnClose = c.version == packet.V5 && p.ReasonCode == packet.DisconnectWithWill
	c.close(errNormalClose, 0)
	return nil
}

// setSessionExpiry applies the Session Expiry Interval of a DISCONNECT (3.14.2.2.2).
func (c *client) setSessionExpiry(expiry uint32) error {
	s := c.session()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry == 0 && expiry != 0 {
		return &packet.Error{Code: packet.ProtocolError, Field: "DISCONNECT session expiry interval",
			Err: errors.New("set on a session that had expiry 0")} // 3.14.2.2.2: a Protocol Error
	}
	s.expiry = expiry
	if m := c.srv.limits.MaxSessionExpiry; m > 0 && int64(s.expiry) > m {
		s.expiry = uint32(m)
	}
	if s.persistent() {
		s.saveLocked()
	}
	return nil
}
