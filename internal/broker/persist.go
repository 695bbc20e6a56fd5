package broker

import (
	"log/slog"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// memQueueWindow is how many queued messages of a persistent session are kept in memory; the
// rest of a deep or offline queue lives only in the store and is read back as the window drains.
const memQueueWindow = 256

// persister writes the broker's durable state through a store.Store: persistent sessions (their
// subscriptions, expiry and will), their queued and in-flight QoS 1/2 messages, inbound QoS 2
// packet ids, and retained messages. A message delivered to several persistent sessions is
// stored once and referenced by each session's queue entry; refs counts those entries, and the
// record is deleted when the last one goes.
type persister struct {
	st  store.Store
	log *slog.Logger

	mu     sync.Mutex // guards refs, nextID and Message.id
	refs   map[uint64]int32
	nextID uint64
}

func newPersister(st store.Store, log *slog.Logger) *persister {
	return &persister{st: st, log: log, refs: make(map[uint64]int32)}
}

func messageRecord(m *Message) *store.MessageRecord {
	r := &store.MessageRecord{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain, Expiry: m.Expiry}
	if m.Props != nil {
		r.Props = packet.AppendProperties(nil, m.Props, packet.PUBLISH)
	}
	return r
}

func messageFromRecord(r *store.MessageRecord) (*Message, error) {
	m := &Message{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain, Expiry: r.Expiry}
	if len(r.Props) > 0 {
		p, err := packet.DecodeProperties(r.Props, packet.PUBLISH)
		if err != nil {
			return nil, err
		}
		m.Props = &p
	}
	return m, nil
}

// ref records one more queue entry referring to m, storing m the first time, and returns m's id.
func (p *persister) ref(m *Message) (uint64, store.Ticket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.id == 0 {
		p.nextID++
		m.id = p.nextID
	}
	var t store.Ticket
	n := p.refs[m.id]
	if n == 0 {
		t = p.st.PutMessage(m.id, messageRecord(m))
	}
	p.refs[m.id] = n + 1
	return m.id, t
}

// unref drops one reference to message id, deleting the record with the last one.
func (p *persister) unref(id uint64) {
	if id == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.refs[id] - 1; n > 0 {
		p.refs[id] = n
		return
	}
	delete(p.refs, id)
	p.st.DeleteMessage(id)
}

func subscriptionRecord(s *topic.Subscription) *store.SubscriptionRecord {
	return &store.SubscriptionRecord{Filter: s.Filter, Group: s.Group, QoS: s.QoS, NoLocal: s.NoLocal,
		RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling, ID: s.ID}
}

// subscriptionRecords is the whole set, for a session's first record (never nil).
func subscriptionRecords(subs map[subKey]topic.Subscription) []store.SubscriptionRecord {
	out := make([]store.SubscriptionRecord, 0, len(subs))
	for _, s := range subs {
		out = append(out, *subscriptionRecord(&s))
	}
	return out
}

func willRecord(w *will, dueAt int64) *store.WillRecord {
	if w == nil {
		return nil
	}
	r := &store.WillRecord{Topic: w.msg.Topic, Payload: w.msg.Payload, QoS: w.msg.QoS, Retain: w.msg.Retain,
		Delay: uint32(w.delay / time.Second), ExpiryInterval: w.expiryInterval, HasExpiry: w.hasExpiry, DueAt: dueAt,
		Identity: identityRecord(w.identity), EarnedAt: unixNanos(w.earnedAt)}
	if w.msg.Props != nil {
		r.Props = packet.AppendProperties(nil, w.msg.Props, packet.PUBLISH)
	}
	return r
}

func willFromRecord(r *store.WillRecord) (*will, error) {
	m, err := messageFromRecord(&store.MessageRecord{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain, Props: r.Props})
	if err != nil {
		return nil, err
	}
	return &will{msg: m, delay: time.Duration(r.Delay) * time.Second, expiryInterval: r.ExpiryInterval, hasExpiry: r.HasExpiry,
		identity: identityFromRecord(r.Identity), earnedAt: fromUnixNanos(r.EarnedAt)}, nil
}

// persistent reports whether the session outlives its connection and so is stored. mu held.
func (s *session) persistent() bool { return s.vhost.srv.persist != nil && s.expiry > 0 && !s.ended }

// saveLocked writes the session record: expiry and the will, which is either the connected
// client's (dueAt 0) or a pending delayed one. Subscriptions are records of their own, written
// one by one as they change (putSubscriptionLocked, removeSubscriptionLocked); the first
// record of a session writes the whole set, for a session that becomes persistent with
// subscriptions (a takeover by a connection asking for a session expiry). mu held.
func (s *session) saveLocked() store.Ticket {
	r := &store.SessionRecord{Vhost: s.vhost.name, ClientID: s.id, Version: byte(s.version),
		ExpiryInterval: s.expiry}
	if !s.stored {
		r.Subscriptions = subscriptionRecords(s.subs)
	}
	if s.identity != nil {
		r.User = s.identity.User
		r.Identity = identityRecord(s.identity)
	}
	switch {
	case s.client != nil:
		r.Will = willRecord(s.will, 0)
	default:
		r.DisconnectedAt = s.disconnectedAt
		if s.pendingWill != nil {
			r.Will = willRecord(s.pendingWill, s.willDueAt)
		}
	}
	s.stored = true
	return s.vhost.srv.persist.st.PutSession(r)
}

// putSubscriptionLocked stores one subscription of a persistent session. mu held.
func (s *session) putSubscriptionLocked(sub *topic.Subscription) store.Ticket {
	if !s.stored {
		return s.saveLocked() // the first record carries the whole set, this one included
	}
	return s.vhost.srv.persist.st.PutSubscription(s.vhost.name, s.id, subscriptionRecord(sub))
}

// removeSubscriptionLocked removes one subscription from the session, the vhost's index and,
// for a persistent session, the store. It reports whether the subscription existed and
// returns the store's ticket for the removal (0 when nothing was written). For UNSUBSCRIBE and
// for the permission re-check (Server.recheckSubscriptions), which needs no saveLocked after
// it. mu held.
func (s *session) removeSubscriptionLocked(group, filter string) (bool, store.Ticket) {
	if !s.unsubscribeLocked(group, filter) {
		return false, 0
	}
	if !s.persistent() || !s.stored {
		return true, 0
	}
	return true, s.vhost.srv.persist.st.DeleteSubscription(s.vhost.name, s.id, group, filter)
}

// StoreHealth returns nil while the broker can store what it must (or keeps no store), and why
// not while the store cannot write: QoS 1/2 publishes, subscription changes of persistent
// sessions and retained messages are then refused. For /api/health/ready.
func (s *Server) StoreHealth() error {
	if s.persist == nil {
		return nil
	}
	return s.persist.st.Healthy()
}

// putEntryLocked writes d's queue entry in the given state. mu held.
func (s *session) putEntryLocked(d *delivery, state byte, pid uint16) store.Ticket {
	e := &store.QueueEntry{Seq: d.seq, MsgID: d.msg.id, QoS: d.qos, Retain: d.retain, State: state, PacketID: pid}
	if d.subID != 0 {
		e.SubIDs = append([]uint32{d.subID}, d.subIDs...)
	}
	return s.vhost.srv.persist.st.PutQueueEntry(s.vhost.name, s.id, e)
}

// forgetLocked removes a finished delivery's entry and its message reference. mu held.
func (s *session) forgetLocked(d *delivery) {
	if d.seq == 0 {
		return
	}
	p := s.vhost.srv.persist
	p.st.DeleteQueueEntry(s.vhost.name, s.id, d.seq)
	p.unref(d.msg.id)
}

// reloadLocked reads the next window of a spilled queue back from the store. mu held.
func (s *session) reloadLocked() {
	p := s.vhost.srv.persist
	n := 0
	// Spilled entries are usually long durable: then neither the queue nor the message reads
	// wait for a group commit in progress (an fsync under fsync=always).
	committed := p.st.Durable(s.spillTicket)
	load := p.st.LoadQueue
	if committed {
		load = p.st.LoadQueueCommitted
	}
	err := load(s.vhost.name, s.id, s.memTailSeq, memQueueWindow, func(e *store.QueueEntry) error {
		n++
		s.memTailSeq = e.Seq
		d, err := p.deliveryFromEntry(e, committed)
		if err != nil {
			p.log.Error("stored queue entry unreadable; skipped", "vhost", s.vhost.name, "client_id", s.id, "seq", e.Seq, "error", err.Error())
			return nil
		}
		s.queue = append(s.queue, d)
		s.qbytes += d.size()
		return nil
	})
	if err != nil {
		p.log.Error("reading a stored queue failed", "vhost", s.vhost.name, "client_id", s.id, "error", err.Error())
	}
	s.spilled -= n
	if n == 0 || s.spilled < 0 {
		s.spilled = 0 // the store holds no more than this: trust it
	}
	s.queued.Store(int32(s.qlen()))
}

func (p *persister) deliveryFromEntry(e *store.QueueEntry, committed bool) (delivery, error) {
	load := p.st.LoadMessage
	if committed {
		load = p.st.LoadMessageCommitted
	}
	r, err := load(e.MsgID)
	if err != nil {
		return delivery{}, err
	}
	m, err := messageFromRecord(r)
	if err != nil {
		return delivery{}, err
	}
	m.id = e.MsgID
	d := delivery{msg: m, qos: e.QoS, retain: e.Retain, seq: e.Seq}
	if len(e.SubIDs) > 0 {
		d.subID = e.SubIDs[0]
		d.subIDs = e.SubIDs[1:]
	}
	return d, nil
}

// dropStoredLocked releases everything the store holds for an ending session: the message
// references of its queued, spilled and in-flight entries, then the session itself. mu held.
func (s *session) dropStoredLocked() {
	p := s.vhost.srv.persist
	if p == nil {
		return
	}
	for i := s.qhead; i < len(s.queue); i++ {
		if s.queue[i].seq != 0 {
			p.unref(s.queue[i].msg.id)
		}
	}
	for _, f := range s.inflight {
		if f.d.seq != 0 {
			p.unref(f.d.msg.id)
		}
	}
	if s.spilled > 0 {
		p.st.LoadQueue(s.vhost.name, s.id, s.memTailSeq, 0, func(e *store.QueueEntry) error {
			p.unref(e.MsgID)
			return nil
		})
	}
	p.st.DeleteSession(s.vhost.name, s.id)
}
