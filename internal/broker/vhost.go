package broker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// Vhost is one tenant: its own sessions and client-id space, subscription index, retained store
// and statistics. Nothing is shared between vhosts.
type Vhost struct {
	name     string
	srv      *Server
	log      *slog.Logger
	index    *topic.Index
	retained *topic.Retained[*Message]
	stats    vhostStats

	// retainMu orders retained publishes against subscribes: a retained PUBLISH holds it
	// shared from storing the message until it has matched subscribers, a SUBSCRIBE holds it
	// exclusively from adding the subscription until it has read the retained messages. So each
	// new subscriber gets a message either live or as retained, never both (4.3.3 exactly once).
	retainMu    sync.RWMutex
	retainedExp retainedExpiry // retained messages that expire, for the sweep

	mu       sync.Mutex
	sessions map[string]*session
	clients  map[*client]struct{}
	claims   map[string]*claim // client ids with a CONNECT in progress
}

func newVhost(srv *Server, name string) *Vhost {
	v := &Vhost{
		name:     name,
		srv:      srv,
		log:      srv.log.With("vhost", name),
		index:    topic.NewIndex(),
		retained: topic.NewRetained[*Message](),
		sessions: make(map[string]*session),
		clients:  make(map[*client]struct{}),
		claims:   make(map[string]*claim),
	}
	v.stats.dropLogger = v.log
	// Shared subscriptions prefer members that are online, so a message is not parked in an
	// offline member's queue while another member could take it.
	// It reads an atomic flag: Match holds the index lock, so it must take no broker lock.
	v.index.Prefer = func(owner any) bool { return owner.(*session).online.Load() }
	return v
}

// Name returns the vhost's name.
func (v *Vhost) Name() string { return v.name }

// routeScratch is reusable routing state, owned by one goroutine (a connection's read loop).
type routeScratch struct {
	ticket  store.Ticket // the newest store ticket the last publish wrote, 0 if none
	matches []*topic.Subscription
	targets []target
	byOwner map[*session]int // index into targets, used once targets outgrow a linear scan
}

// target is one session a message goes to, with the subscription options merged across every
// matching subscription of that session.
type target struct {
	sess   *session
	qos    byte
	retain bool
	subID  uint32
	subIDs []uint32
}

const linearTargets = 16

func (rs *routeScratch) find(s *session) int {
	if rs.byOwner != nil && len(rs.targets) > linearTargets {
		if i, ok := rs.byOwner[s]; ok {
			return i
		}
		return -1
	}
	for i := range rs.targets {
		if rs.targets[i].sess == s {
			return i
		}
	}
	return -1
}

func (rs *routeScratch) add(t target) {
	rs.targets = append(rs.targets, t)
	n := len(rs.targets)
	switch {
	case n == linearTargets+1:
		if rs.byOwner == nil {
			rs.byOwner = make(map[*session]int)
		}
		clear(rs.byOwner)
		for i := range rs.targets {
			rs.byOwner[rs.targets[i].sess] = i
		}
	case n > linearTargets+1:
		rs.byOwner[t.sess] = n - 1
	}
}

// route delivers m to every session with a matching subscription and returns how many sessions
// it went to. A session with several matching subscriptions gets one copy, at the highest
// granted QoS, with every Subscription Identifier [MQTT-3.3.4-2], [MQTT-3.3.4-3]; the copy's
// QoS is the lower of the publish QoS and the subscription's [MQTT-3.8.4-8].
func (v *Vhost) route(m *Message, rs *routeScratch) int {
	v.match(m, rs)
	return v.deliverTargets(m, rs)
}

// match fills rs.targets with the sessions m goes to.
func (v *Vhost) match(m *Message, rs *routeScratch) {
	rs.targets = rs.targets[:0]
	rs.matches = v.index.Match(m.Topic, rs.matches[:0])
	for _, sub := range rs.matches {
		s := sub.Owner.(*session)
		if sub.NoLocal && s == m.origin {
			continue // [MQTT-3.8.3-3]
		}
		if sub.Check != nil && !sub.Check(m.Topic) {
			continue // the subscriber may not read this topic (issue 11: read permission per message)
		}
		qos := min(m.QoS, sub.QoS)
		retain := sub.RetainAsPublished && m.Retain // [MQTT-3.3.1-12], [MQTT-3.3.1-13]
		i := rs.find(s)
		if i < 0 {
			rs.add(target{sess: s, qos: qos, retain: retain, subID: sub.ID})
			continue
		}
		t := &rs.targets[i]
		t.qos = max(t.qos, qos)
		t.retain = t.retain || retain
		if sub.ID != 0 {
			if t.subID == 0 {
				t.subID = sub.ID
			} else {
				t.subIDs = append(t.subIDs, sub.ID)
			}
		}
	}
}

// deliverTargets hands m to the sessions match found and resets the scratch.
func (v *Vhost) deliverTargets(m *Message, rs *routeScratch) int {
	now := v.srv.now().UnixNano()
	for i := range rs.targets {
		t := &rs.targets[i]
		tk := t.sess.deliver(delivery{msg: m, qos: t.qos, retain: t.retain, subID: t.subID, subIDs: t.subIDs}, now)
		rs.ticket = max(rs.ticket, tk)
		*t = target{}
	}
	n := len(rs.targets)
	if n > linearTargets {
		clear(rs.byOwner)
	}
	rs.targets = rs.targets[:0]
	return n
}

// publish stores m in the retained index when it is retained [MQTT-3.3.1-5] (an empty payload
// removes the topic's retained message [MQTT-3.3.1-6], [MQTT-3.3.1-7]) and routes it.
// The store's ticket for what it wrote is left in rs.ticket.
func (v *Vhost) publish(m *Message, rs *routeScratch) int {
	rs.ticket = 0
	if !m.Retain {
		return v.route(m, rs)
	}
	p := v.srv.persist
	if strings.HasPrefix(m.Topic, "$SYS/") {
		p = nil // the server's statistics are regenerated, not stored
	}
	if p != nil && p.st.Healthy() != nil {
		// The store cannot keep it: the retained message of the topic stays as it was (a
		// client's QoS 1/2 PUBLISH was refused before it got here), and m is delivered as a
		// message that is not retained.
		v.log.Debug("retained message not stored: the store cannot write", "topic", m.Topic)
		live := *m
		live.Retain = false
		return v.route(&live, rs)
	}
	v.storeRetained(m, p, rs)
	return v.deliverTargets(m, rs)
}

// storeRetained sets or clears the topic's retained message and matches m's subscribers, under
// retainMu shared (released by a defer).
func (v *Vhost) storeRetained(m *Message, p *persister, rs *routeScratch) {
	v.retainMu.RLock()
	defer v.retainMu.RUnlock()
	if len(m.Payload) == 0 {
		v.retained.Delete(m.Topic)
		if p != nil {
			rs.ticket = p.st.DeleteRetained(v.name, m.Topic)
		}
	} else {
		v.retained.Set(m.Topic, m)
		v.retainedExp.track(m)
		if p != nil {
			rs.ticket = p.st.PutRetained(v.name, messageRecord(m))
		}
	}
	v.match(m, rs)
}

// publishServer publishes a message that no connection's read loop owns: a will or a $SYS value.
func (v *Vhost) publishServer(m *Message) {
	var rs routeScratch
	v.publish(m, &rs)
}

// retainedFor returns the retained messages matching a new subscription, with their delivery:
// RETAIN set [MQTT-3.3.1-8], at the lower of the message's and the subscription's QoS. Expired
// ones are removed instead [MQTT-3.3.2-5]. The caller holds retainMu exclusively.
func (v *Vhost) retainedFor(sub topic.Subscription, now int64, dst []delivery) []delivery {
	v.retained.Match(sub.Filter, func(name string, m *Message) bool {
		if m.expired(now) {
			v.retained.Delete(name)
			return true
		}
		if sub.Check != nil && !sub.Check(name) {
			return true
		}
		dst = append(dst, delivery{msg: m, qos: min(m.QoS, sub.QoS), retain: true, subID: sub.ID})
		return true
	})
	return dst
}

// claim reserves a client id for one CONNECT at a time: takeovers of one client id are handled
// one after the other, however many connections race for it (a takeover storm).
type claim struct{ done signal } // fired when released: a channel only if a CONNECT waits

// claimID waits until no other CONNECT holds id, then holds it; false when ctx ended first.
// v.mu is not held while waiting.
func (v *Vhost) claimID(ctx context.Context, id string) bool {
	for {
		v.mu.Lock()
		cl := v.claims[id]
		if cl == nil {
			v.claims[id] = new(claim)
			v.mu.Unlock()
			return true
		}
		v.mu.Unlock()
		select {
		case <-cl.done.wait():
		case <-ctx.Done():
			return false
		}
	}
}

// releaseID ends the claim on id.
func (v *Vhost) releaseID(id string) {
	v.mu.Lock()
	if cl := v.claims[id]; cl != nil {
		cl.done.fire()
		delete(v.claims, id)
	}
	v.mu.Unlock()
}

// sameOwner reports whether a connection of identity id may use a session owned by owner. A
// session recovered from a store written before sessions kept their owner's subject belongs to
// whoever logs in as its local user.
func sameOwner(owner, id *auth.Identity) bool {
	if owner == nil {
		return true
	}
	if owner.Owner() == id.Owner() {
		return true
	}
	return owner.Subject == "" && owner.Issuer == auth.IssuerLocal && id.Issuer == auth.IssuerLocal && owner.User == id.User
}

// errOtherOwner refuses a CONNECT whose client id names a session of another subject.
var errOtherOwner = errors.New("the client id belongs to a session of another user")

// errBusy refuses a CONNECT that could not take over its client id in time.
var errBusy = errors.New("the connection holding the client id did not end in time")

// connect attaches c to the session named by c.clientID and queues the CONNACK in front of
// anything resent. A session of another subject is refused and left untouched (errOtherOwner).
// A connection still attached to the session is taken over [MQTT-3.1.4-3]: it first processes
// what it has already received (a DISCONNECT there ends it normally, discarding its will and,
// for a clean session, the session), then ends with DISCONNECT 0x8E, and its own cleanup
// decides about its will and its session, exactly as for any other close. Only then is the
// session looked up again: a session that ended by its rules is never resumed. No vhost-wide
// lock is held while waiting for the old connection.
func (v *Vhost) connect(c *client, clean bool, expiry uint32, w *will, ack *packet.Connack) error {
	ctx := newDeadlineCtx(connectTimeout)
	defer ctx.stop()
	if !v.claimID(ctx, c.clientID) {
		return errBusy
	}
	defer v.releaseID(c.clientID)
	for {
		v.mu.Lock()
		s := v.sessions[c.clientID]
		var old *client
		if s != nil {
			s.mu.Lock()
			owner, attached := s.identity, s.client
			s.mu.Unlock()
			if !sameOwner(owner, c.id()) {
				v.mu.Unlock()
				return errOtherOwner
			}
			old = attached
		}
		if old == nil {
			if err := v.admitLocked(c, s); err != nil { // bans, max-sessions, connection limits (limits.go)
				v.mu.Unlock()
				return err
			}
			wills, resumed := v.attachLocked(c, s, clean, expiry, w, ack)
			v.mu.Unlock()
			for _, pw := range wills {
				v.publishWill(pw)
			}
			if resumed != nil {
				v.suppressWill(resumed, event.WillSessionResumed, "the session was resumed within the Will Delay Interval")
			}
			return nil
		}
		v.mu.Unlock()
		if !old.takeOver(ctx) {
			return errBusy
		}
	}
}

// attachLocked attaches c to session s (nil: none) of its client id, ending s first when clean
// [MQTT-3.1.2-4]. It returns the wills to publish, and the pending will that the resumption
// cancelled. s has no connection. v.mu held.
func (v *Vhost) attachLocked(c *client, s *session, clean bool, expiry uint32, w *will, ack *packet.Connack) (wills []*will, resumed *will) {
	if s != nil {
		s.mu.Lock()
		if pw := s.pendingWill; pw != nil {
			stopTimer(&s.willTimer)
			s.pendingWill = nil
			if clean {
				wills = append(wills, pw) // the session ends now, and with it the delay
			} else { // resumed within the Will Delay Interval, so it is not sent [MQTT-3.1.3-9]
				resumed = pw
			}
		}
		if clean { // [MQTT-3.1.2-4]: Clean Start discards the existing session
			if ew := s.endLocked(); ew != nil {
				wills = append(wills, ew)
			}
			delete(v.sessions, s.id)
			s.mu.Unlock()
			s = nil
		} else {
			stopTimer(&s.expiryTimer)
		}
	}
	ack.SessionPresent = s != nil // [MQTT-3.2.2-2], [MQTT-3.2.2-3]
	if s == nil {
		s = newSession(v, c.clientID)
		v.sessions[c.clientID] = s
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	s.client, s.expiry, s.will, s.version = c, expiry, w, c.version
	s.setIdentityLocked(c.id())
	s.online.Store(true)
	s.disconnectedAt = 0
	if s.persistent() {
		s.saveLocked()
	}
	c.sess.Store(s)
	c.sendConnack(ack)
	if ack.SessionPresent {
		s.resendLocked(c)
		s.drainLocked(c)
	}
	v.clients[c] = struct{}{}
	return wills, resumed
}

// disconnect detaches c from its session when its connection has ended. The session ends now
// when its expiry interval is 0, otherwise it waits offline; the will is published now, after
// its delay, or when the session ends, whichever comes first [MQTT-3.1.2-8], [MQTT-3.1.3-9].
// willFate is what becomes of a connection's will when the connection ends.
type willFate uint8

const (
	willPublish   willFate = iota // earned: published now or after its delay
	willDropped                   // DISCONNECT 0x00, or the server shutting down: not a loss
	willDiscarded                 // revoked, banned, kicked without will: suppressed and reported
)

func (v *Vhost) disconnect(c *client, fate willFate) {
	wills, discarded := v.detach(c, fate)
	for _, w := range wills {
		v.publishWill(w)
	}
	if discarded != nil {
		reason := event.WillRevoked
		if r := c.willDiscard.Load(); r != nil {
			reason = *r
		}
		v.suppressWill(discarded, reason, "discarded when its connection was closed")
	}
}

// earn stamps a will earned now by connection c (will-and-expiry.md §4): with the identity in
// force, at min(now, its credential's expiry), so a will of a connection closed for an expired
// credential is earned at the expiry instant, not at the timer's possibly late firing.
func earn(w *will, id *auth.Identity, now time.Time) {
	w.identity, w.earnedAt = id, now
	if id != nil && id.Expires() && id.Expiry.Before(now) {
		w.earnedAt = id.Expiry
	}
}

// detach is disconnect's locked part; it returns the wills to publish now, and the will it
// discarded. Locks are released by defers.
func (v *Vhost) detach(c *client, fate willFate) (wills []*will, discarded *will) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.clients, c)
	v.stats.msgsIn.Add(c.msgsIn.Load())
	v.stats.bytesIn.Add(c.bytesIn.Load())
	v.stats.bytesOut.Add(c.bytesOut.Load())
	c.out.mu.Lock()
	v.stats.msgsOut.Add(c.out.msgsOut)
	c.out.msgsOut = 0
	c.out.mu.Unlock()
	c.msgsIn.Store(0)
	c.bytesIn.Store(0)
	c.bytesOut.Store(0)

	s := c.sess.Load()
	if s == nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != c { // detached already: the session was deleted or its user removed
		return nil, nil
	}
	s.client = nil
	s.online.Store(false)
	w := s.will
	s.will = nil
	now := v.srv.now()
	switch {
	case w == nil:
	case fate == willDiscarded:
		discarded, w = w, nil
	case fate == willDropped:
		w = nil
	default:
		earn(w, c.id(), now)
	}
	if s.expiry == 0 {
		if w != nil {
			wills = append(wills, w)
		}
		if ew := s.endLocked(); ew != nil {
			wills = append(wills, ew)
		}
		delete(v.sessions, s.id)
		return wills, discarded
	}
	s.disconnectedAt = now.UnixNano()
	if w != nil {
		delay := min(w.delay, time.Duration(s.expiry)*time.Second)
		if delay <= 0 {
			wills = append(wills, w)
		} else {
			s.schedulePendingWillLocked(w, now.Add(delay))
		}
	}
	if s.expiry != expiryNever {
		s.scheduleExpiryLocked(time.Duration(s.expiry) * time.Second)
	}
	// On shutdown the record is left as it was while connected: after a restart the
	// session's expiry and will count from the restart, as after a crash.
	if s.persistent() && !v.srv.shuttingDown.Load() {
		s.saveLocked()
	}
	return wills, discarded
}

// schedulePendingWillLocked holds w until due, when fireWill publishes it. s.mu held.
func (s *session) schedulePendingWillLocked(w *will, due time.Time) {
	s.pendingWill, s.willDueAt = w, due.UnixNano()
	clk := s.vhost.srv.clock
	s.willTimer = clk.AfterFunc(due.Sub(clk.Now()), func() {
		defer s.vhost.srv.recoverTimer("will delay")
		s.vhost.fireWill(s)
	})
}

// scheduleExpiryLocked ends the offline session after d unless it is resumed. s.mu held.
func (s *session) scheduleExpiryLocked(d time.Duration) {
	s.expiryTimer = s.vhost.srv.clock.AfterFunc(d, func() {
		defer s.vhost.srv.recoverTimer("session expiry")
		s.vhost.expire(s)
	})
}

// fireWill publishes a delayed will whose Will Delay Interval has passed while its session
// stayed offline.
func (v *Vhost) fireWill(s *session) {
	s.mu.Lock()
	w := s.pendingWill
	if s.client != nil || s.ended {
		w = nil
	}
	s.pendingWill, s.willTimer = nil, nil
	if w != nil && s.persistent() {
		s.saveLocked() // the will is gone from the record once published
	}
	s.mu.Unlock()
	if w != nil {
		v.publishWill(w)
	}
}

// expire ends an offline session whose Session Expiry Interval has passed, publishing a will
// still waiting for its delay [MQTT-3.1.2-8].
func (v *Vhost) expire(s *session) { v.expireWith(s, nil) }

// expireWith is expire for a session recovered already expired, whose will w was never pending.
func (v *Vhost) expireWith(s *session, w *will) {
	v.mu.Lock()
	s.mu.Lock()
	if s.client == nil && !s.ended && v.sessions[s.id] == s {
		if pw := s.endLocked(); pw != nil {
			w = pw
		}
		delete(v.sessions, s.id)
		v.log.Debug("session expired", "client_id", s.id)
	} else {
		w = nil
	}
	s.mu.Unlock()
	v.mu.Unlock()
	if w != nil {
		v.publishWill(w)
	}
}

// forgetPendingWill rewrites a recovered session's record without the will just published.
func (v *Vhost) forgetPendingWill(s *session) {
	s.mu.Lock()
	if s.persistent() {
		s.saveLocked()
	}
	s.mu.Unlock()
}

// publishWill sends a Will Message if its subject is still in good standing and the identity
// proven at CONNECT may publish to its topic under the policy in force now; the credential is
// never verified again. Its Message Expiry Interval counts from now. A will that is not sent is
// suppressed: logged once, reported, and gone (no retry).
func (v *Vhost) publishWill(w *will) {
	now := v.srv.now()
	if w.earnedAt.IsZero() {
		w.earnedAt = now
	}
	if id := w.identity; id != nil {
		if st := v.srv.opts.Standing; st != nil {
			if reason, revoked := st.Revoked(id, now); revoked {
				v.suppressWill(w, reason, "the subject is no longer in good standing")
				return
			}
		}
		if err := v.srv.opts.Authorizer.CanPublish(id, w.clientID, w.msg.Topic); err != nil {
			v.suppressWill(w, event.WillNotAuthorized, err.Error())
			return
		}
	}
	m := *w.msg
	if w.hasExpiry {
		m.Expiry = now.Add(time.Duration(w.expiryInterval) * time.Second).UnixNano()
	}
	v.publishServer(&m)
	e := event.Event{Kind: event.WillPublished, Vhost: v.name, ClientID: w.clientID, Identity: w.identity,
		Topic: w.msg.Topic, EarnedAt: w.earnedAt}
	if w.identity != nil {
		e.User = w.identity.User
	}
	v.srv.observe(e)
}

// suppressWill discards a will that will not be published, and says why, once.
func (v *Vhost) suppressWill(w *will, reason, detail string) {
	user := ""
	if w.identity != nil {
		user = w.identity.User
	}
	v.log.Warn("will not published", "client_id", w.clientID, "user", user, "reason", reason, "detail", detail)
	v.srv.observe(event.Event{Kind: event.WillSuppressed, Vhost: v.name, ClientID: w.clientID, User: user,
		Identity: w.identity, Topic: w.msg.Topic, Reason: reason, Detail: detail, EarnedAt: w.earnedAt})
}
