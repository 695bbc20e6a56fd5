package broker

import (
	"errors"
	"log/slog"
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
		dup, t, err := c.acceptQoS2(s, p.PacketID, down == nil)
		if err != nil {
			return err
		}
		if dup { // already passed on: acknowledge again, do not deliver twice [MQTT-4.3.3-9]
			c.ack(0, packet.PUBREC, p.PacketID, packet.Success)
			return nil
		}
		ticket = t
	}
	if down != nil {
		return c.refusePublish(p)
	}

	if p.Topic == topicUploadToken {
		return c.handleUpload(p) // before routing and authorization, never routed (tokens.md §6)
	}
	code := packet.Success
	if c.expiredNow() {
		// The credential expired; a late timer never extends access (will-and-expiry.md §4).
		if c.version != packet.V5 {
			return errCredentialExpired
		}
		code = packet.NotAuthorized
	} else if isReserved(p.Topic) {
		// $SYS is the server's own tree; clients do not publish into it (4.7.2).
		code = packet.NotAuthorized
		c.logf(slog.LevelDebug, "publish to $SYS refused", "topic", p.Topic)
	} else if err := c.srv.opts.Authorizer.CanPublish(c.id(), c.clientID, p.Topic); err != nil {
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
// whether it was already recorded (a repeated PUBLISH). With record false (the store cannot
// write) a new id is not recorded: the PUBLISH is refused and the id stays free.
func (c *client) acceptQoS2(s *session, pid uint16, record bool) (dup bool, t store.Ticket, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup = s.inQoS2[pid]; dup || !record {
		return dup, 0, nil
	}
	if len(s.inQoS2) >= c.srv.limits.ReceiveMax { // [MQTT-3.3.4-7]
		return false, 0, &packet.Error{Code: packet.ReceiveMaximumExceeded, Field: "PUBLISH", Err: errors.New("more QoS 2 messages in flight than Receive Maximum")}
	}
	s.addInQoS2(pid)
	if s.persistent() {
		t = c.srv.persist.st.PutInbound(c.vhost.name, s.id, pid)
	}
	return false, t, nil
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
	if c.expiredNow() {
		if c.version != packet.V5 {
			return errCredentialExpired
		}
		for i := range codes {
			codes[i] = packet.NotAuthorized
		}
		c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
		return nil
	}
	now := c.srv.now().UnixNano()
	s := c.session()
	retained, writes, err := c.subscribe(s, p, subID, codes, now)
	if err != nil {
		return err
	}
	// A persistent session's SUBACK follows the durable write of its subscriptions; SUBACK is
	// queued before the retained messages are delivered.
	var ticket store.Ticket
	for _, w := range writes {
		ticket = max(ticket, w.ticket)
	}
	if c.waitDurable(ticket) != nil {
		retained = c.rollBackSubscriptions(s, p, writes, codes, retained)
	}
	c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	s.deliverRetained(c, retained)
	return nil
}

// storedSub is one subscription SUBSCRIBE wrote to the store, what it replaced, and the
// retained messages it brought (retained[from:to]), for a roll-back when the write fails.
type storedSub struct {
	i        int // the filter's index in SUBSCRIBE
	sub      topic.Subscription
	prev     topic.Subscription
	hadPrev  bool
	ticket   store.Ticket
	from, to int
}

// rollBackSubscriptions undoes the subscriptions whose store write failed: SUBACK 0x80 for
// them, the subscription they replaced put back, their retained messages not sent. It returns
// the retained messages still to send.
func (c *client) rollBackSubscriptions(s *session, p *packet.Subscribe, writes []storedSub, codes []packet.ReasonCode, retained []delivery) []delivery {
	st := c.store()
	drop := make([]bool, len(retained))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range writes {
		if _, err := st.Status(w.ticket); err == nil {
			continue
		}
		codes[w.i] = packet.UnspecifiedError
		for j := w.from; j < w.to; j++ {
			drop[j] = true
		}
		k := subKey{w.sub.Group, w.sub.Filter}
		if cur, ok := s.subs[k]; ok && sameSubscription(cur, w.sub) && !s.ended {
			if w.hadPrev {
				s.subscribeLocked(w.prev)
			} else {
				s.unsubscribeLocked(w.sub.Group, w.sub.Filter)
			}
		}
		c.logf(slog.LevelDebug, "subscribe refused: the store could not write it", "filter", p.Subscriptions[w.i].Filter)
	}
	kept := retained[:0]
	for j, d := range retained {
		if !drop[j] {
			kept = append(kept, d)
		}
	}
	return kept
}

// sameSubscription reports whether a and b are the same subscription: the one SUBSCRIBE stored,
// not one a later SUBSCRIBE put in its place. Gated subscriptions carry a Check function, which
// Go cannot compare, so the options are compared one by one.
func sameSubscription(a, b topic.Subscription) bool {
	return a.Owner == b.Owner && a.Filter == b.Filter && a.Group == b.Group && a.QoS == b.QoS &&
		a.NoLocal == b.NoLocal && a.RetainAsPublished == b.RetainAsPublished &&
		a.RetainHandling == b.RetainHandling && a.ID == b.ID
}

// testHookLocked, set only by tests, runs in SUBSCRIBE with the vhost's retainMu and the
// session's mu held: a panic there proves that recovery leaves no lock held.
var testHookLocked func(*client)

// subscribe adds the subscriptions of p to s, filling codes, and returns the retained messages
// to send and what it wrote to the store (one record per subscription of a persistent session;
// while the store cannot write, such a subscription is refused with 0x80). It holds the
// vhost's retainMu and s.mu, both released by defers.
func (c *client) subscribe(s *session, p *packet.Subscribe, subID uint32, codes []packet.ReasonCode, now int64) ([]delivery, []storedSub, error) {
	var retained []delivery
	var writes []storedSub
	c.vhost.retainMu.Lock() // see Vhost.retainMu: retained messages are read with the subscription added
	defer c.vhost.retainMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if testHookLocked != nil {
		testHookLocked(c) // tests: a panic here holds retainMu and s.mu
	}
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
		if isNoticeFilter(r.Filter) {
			// Only this connection's own token notices ever arrive here (credential.go).
		} else if err := c.srv.opts.Authorizer.CanSubscribe(c.id(), c.clientID, r.Filter); err != nil {
			codes[i] = packet.NotAuthorized // v5 SUBACK 0x87; 3.1.1 0x80, mapped by the codec
			c.srv.deny(c, acl.Subscribe, r.Filter, err)
			continue
		}
		if shared && r.NoLocal {
			return nil, nil, &packet.Error{Code: packet.ProtocolError, Field: "SUBSCRIBE no local", Err: errors.New("no local set on a shared subscription")} // [MQTT-3.8.3-4]
		}
		if s.ended {
			codes[i] = packet.UnspecifiedError // the session was ended under this closing connection
			continue
		}
		if down != nil {
			codes[i] = packet.UnspecifiedError // 0x80: the subscription could not be stored
			c.logf(slog.LevelDebug, "subscribe refused: the store cannot write", "filter", r.Filter)
			continue
		}
		if c.overSubscriptionLimit(s, group, filter) { // limits.go
			codes[i] = packet.QuotaExceeded // v5 SUBACK 0x97; 3.1.1 0x80, mapped by the codec
			continue
		}
		sub := s.withGate(topic.Subscription{Owner: s, Filter: filter, Group: group, QoS: r.QoS, NoLocal: r.NoLocal,
			RetainAsPublished: r.RetainAsPublished, RetainHandling: r.RetainHandling, ID: subID})
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
			writes = append(writes, storedSub{i: i, sub: sub, prev: prev, hadPrev: hadPrev, ticket: tk,
				from: from, to: len(retained)})
		}
	}
	return retained, writes, nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK [MQTT-3.10.4-4], [MQTT-3.10.4-5].
//
// A persistent session's removals are stored (one record each) before UNSUBACK. One the store
// cannot write is not done: the subscription stays, and a v5 client gets UNSUBACK 0x80 for its
// filter (3.11.3); a 3.1.1 UNSUBACK has no reason codes, so that connection closes without one.
func (c *client) handleUnsubscribe(p *packet.Unsubscribe) {
	codes := make([]packet.ReasonCode, len(p.Filters))
	s := c.session()
	writes, failed := c.unsubscribe(s, p.Filters, codes)
	var ticket store.Ticket
	for _, w := range writes {
		ticket = max(ticket, w.ticket)
	}
	if c.waitDurable(ticket) != nil && c.putBackSubscriptions(s, writes, codes) {
		failed = true
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

// unsubscribe removes filters from s, filling codes, and returns the removals it wrote to the
// store and whether one was refused because the store cannot write. s.mu is released by a defer.
func (c *client) unsubscribe(s *session, filters []string, codes []packet.ReasonCode) (writes []storedSub, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var down error
	if s.persistent() {
		down = c.storeDown()
	}
	for i, f := range filters {
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
				writes = append(writes, storedSub{i: i, sub: sub, ticket: tk})
			}
		}
	}
	return writes, failed
}

// putBackSubscriptions puts back the subscriptions whose removal the store could not write,
// with UNSUBACK 0x80 for them, and reports whether there was one.
func (c *client) putBackSubscriptions(s *session, writes []storedSub, codes []packet.ReasonCode) bool {
	st := c.store()
	failed := false
	s.mu.Lock()
	defer s.mu.Unlock()
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
	return failed
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
