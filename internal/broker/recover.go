package broker

import (
	"fmt"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// vhostFor returns the named vhost, creating it.
func (s *Server) vhostFor(name string) *Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vhosts[name]
	if v == nil {
		v = newVhost(s, name)
		s.vhosts[name] = v
	}
	return v
}

// recover rebuilds the broker's state from the store: retained messages, then sessions with
// their subscriptions, inbound QoS 2 ids, in-flight and queued messages (the first window of
// each queue; the rest stays in the store), expiry timers and pending wills. A session that
// expired while the broker was down ends now, publishing its will.
func (s *Server) recover() error {
	p := s.persist
	start := time.Now()
	var retained, sessions, entries int
	err := p.st.LoadRetained(func(vhost string, r *store.MessageRecord) error {
		m, err := messageFromRecord(r)
		if err != nil {
			s.log.Error("stored retained message unreadable; skipped", "vhost", vhost, "error", err.Error())
			return nil
		}
		m.Retain = true
		v := s.Vhost(vhost)
		if v == nil { // the vhost was deleted while its state was being written
			p.st.DeleteRetained(vhost, m.Topic)
			return nil
		}
		v.retained.Set(m.Topic, m)
		v.retainedExp.track(m)
		retained++
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading retained messages: %w", err)
	}
	maxID, err := p.st.MaxMessageID()
	if err != nil {
		return fmt.Errorf("loading message ids: %w", err)
	}
	p.nextID = maxID

	var records []*store.SessionRecord
	if err := p.st.LoadSessions(func(r *store.SessionRecord) error {
		records = append(records, r)
		return nil
	}); err != nil {
		return fmt.Errorf("loading sessions: %w", err)
	}
	var wills []func()
	now := s.now()
	for _, r := range records {
		if s.Vhost(r.Vhost) == nil {
			s.log.Warn("stored session of a vhost that no longer exists; removed", "vhost", r.Vhost, "client_id", r.ClientID)
			p.st.DeleteSession(r.Vhost, r.ClientID)
			continue
		}
		n, w, err := s.recoverSession(r, now)
		if err != nil {
			return fmt.Errorf("session %q in vhost %q: %w", r.ClientID, r.Vhost, err)
		}
		entries += n
		sessions++
		if w != nil {
			wills = append(wills, w)
		}
	}
	if n, err := p.st.DeleteUnreferencedMessages(); err != nil {
		s.log.Warn("removing unreferenced stored messages failed", "error", err.Error())
	} else if n > 0 {
		s.log.Info("removed unreferenced stored messages", "count", n)
	}
	s.log.Info("state recovered", "sessions", sessions, "queued_messages", entries, "retained", retained,
		"took", time.Since(start).Round(time.Millisecond))
	for _, w := range wills {
		w()
	}
	return nil
}

// recoverSession restores one stored session and returns how many queue entries it has, and a
// function to run once recovery is over (publishing a will, or ending an expired session).
func (s *Server) recoverSession(r *store.SessionRecord, now time.Time) (int, func(), error) {
	p := s.persist
	v := s.vhostFor(r.Vhost)
	ss := newSession(v, r.ClientID)
	ss.version, ss.expiry, ss.stored = packet.Version(r.Version), r.ExpiryInterval, true
	switch {
	case r.Identity != nil:
		// The identity proven at the last CONNECT (or re-authentication): it owns the session,
		// and a recovered will is authorized against it.
		id := identityFromRecord(r.Identity)
		id.ClientID = r.ClientID // a ban of the client id holds its recovered will too
		ss.setIdentityLocked(id)
	case r.User != "":
		// A record written before identities were stored: the user name only; the session is
		// adopted by the first login of that user (session ownership, connect.go).
		ss.setIdentityLocked(&auth.Identity{User: r.User, Issuer: auth.IssuerLocal, Vhost: r.Vhost, Method: "recovered",
			ClientID: r.ClientID})
	}
	for _, sr := range r.Subscriptions {
		sub := ss.withGate(topic.Subscription{Owner: ss, Filter: sr.Filter, Group: sr.Group, QoS: sr.QoS, NoLocal: sr.NoLocal,
			RetainAsPublished: sr.RetainAsPublished, RetainHandling: sr.RetainHandling, ID: sr.ID})
		ss.setSub(sub)
		v.index.Subscribe(sub)
	}
	pids, err := p.st.LoadInbound(r.Vhost, r.ClientID)
	if err != nil {
		return 0, nil, err
	}
	for _, pid := range pids {
		ss.addInQoS2(pid)
	}

	// Queue entries: all in-flight ones and the first window of queued ones come into memory;
	// every entry counts a reference to its message.
	loaded := make(map[uint64]*Message)
	n := 0
	err = p.st.LoadQueue(r.Vhost, r.ClientID, 0, 0, func(e *store.QueueEntry) error {
		n++
		ss.nextSeq = max(ss.nextSeq, e.Seq)
		p.refs[e.MsgID]++
		inMemory := e.State != byte(queued) || (ss.spilled == 0 && ss.qlen() < memQueueWindow)
		if !inMemory {
			ss.spilled++
			ss.spilledBytes += len(e.SubIDs)*4 + 16 // sizes are re-counted exactly when reloaded
			return nil
		}
		d, err := p.deliveryFromEntryCached(e, loaded)
		if err != nil {
			s.log.Error("stored queue entry unreadable; dropped", "vhost", r.Vhost, "client_id", r.ClientID, "seq", e.Seq, "error", err.Error())
			p.st.DeleteQueueEntry(r.Vhost, r.ClientID, e.Seq)
			p.refs[e.MsgID]--
			return nil
		}
		ss.memTailSeq = e.Seq
		if e.State == byte(queued) {
			ss.queue = append(ss.queue, d)
			ss.qbytes += d.size()
			return nil
		}
		ss.order++
		ss.setInflight(e.PacketID, outFlight{d: d, state: flightState(e.State), order: ss.order})
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	ss.queued.Store(int32(ss.qlen()))

	v.mu.Lock()
	v.sessions[ss.id] = ss
	v.mu.Unlock()

	// The session is offline. Its expiry counts from its disconnection, or from now when the
	// broker stopped while it was connected.
	disconnected := now
	if r.DisconnectedAt != 0 {
		disconnected = time.Unix(0, r.DisconnectedAt)
	}
	ss.disconnectedAt = disconnected.UnixNano()
	var w *will
	var due time.Time
	if r.Will != nil {
		if w, err = willFromRecord(r.Will); err != nil {
			s.log.Error("stored will unreadable; dropped", "vhost", r.Vhost, "client_id", r.ClientID, "error", err.Error())
			w = nil
		} else {
			if w.identity == nil {
				w.identity = ss.identity // written before a will had its own identity
			}
			w.clientID = ss.id
		}
		due = now.Add(min(w.delayOr0(), time.Duration(r.ExpiryInterval)*time.Second))
		if r.Will.DueAt != 0 {
			due = time.Unix(0, r.Will.DueAt)
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if r.ExpiryInterval != expiryNever {
		left := time.Duration(r.ExpiryInterval)*time.Second - now.Sub(disconnected)
		if left <= 0 {
			return n, func() { v.expireWith(ss, w) }, nil
		}
		ss.scheduleExpiryLocked(left)
	}
	if w != nil {
		if !due.After(now) {
			return n, func() { v.publishWill(w); v.forgetPendingWill(ss) }, nil
		}
		ss.schedulePendingWillLocked(w, due)
	}
	return n, nil, nil
}

func (w *will) delayOr0() time.Duration {
	if w == nil {
		return 0
	}
	return w.delay
}

func (p *persister) deliveryFromEntryCached(e *store.QueueEntry, cache map[uint64]*Message) (delivery, error) {
	if m, ok := cache[e.MsgID]; ok {
		d := delivery{msg: m, qos: e.QoS, retain: e.Retain, seq: e.Seq}
		if len(e.SubIDs) > 0 {
			d.subID, d.subIDs = e.SubIDs[0], e.SubIDs[1:]
		}
		return d, nil
	}
	d, err := p.deliveryFromEntry(e, false)
	if err == nil {
		cache[e.MsgID] = d.msg
	}
	return d, err
}
