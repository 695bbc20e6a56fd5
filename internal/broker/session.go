package broker

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// Session Expiry Interval meaning "never expires" (3.1.2.11.2).
const expiryNever = 0xFFFFFFFF

// flightState is where an outbound QoS 1/2 message stands in its acknowledgement flow. The values
// are the queue entry states of package store.
type flightState uint8

const (
	queued       flightState = iota // waiting for the in-flight window
	awaitAck                        // QoS 1 PUBLISH or QoS 2 PUBLISH sent (awaiting PUBACK or PUBREC)
	awaitPubcomp                    // QoS 2 PUBREL sent
)

// outFlight is one unacknowledged outbound message, kept by packet id until its flow completes.
type outFlight struct {
	d     delivery
	state flightState
	order uint64 // send order, for retransmission in the original order [MQTT-4.6.0-1]
}

// will is a Will Message waiting for its connection to end (3.1.2.5).
type will struct {
	// identity is the one in force when the will was earned (proven at CONNECT or by the last
	// successful re-authentication), and clientID the connection's: the will is authorized
	// against them when it is sent, never by re-validating the credential.
	identity *auth.Identity
	// earnedAt is when the will was earned (will-and-expiry.md §4): the connection's end, or
	// the credential's expiry when that came first. Zero while the connection is up.
	earnedAt       time.Time
	clientID       string
	msg            *Message
	delay          time.Duration // Will Delay Interval (v5)
	expiryInterval uint32        // Message Expiry Interval, counted from publication
	hasExpiry      bool
}

// subKey identifies one of a session's subscriptions: a shared group and a filter.
type subKey struct{ group, filter string }

// session is the server side of an MQTT session (4.1): it outlives connections when its
// Session Expiry Interval (or 3.1.1 Clean Session = 0) says so, and is then stored. Every field
// below mu is guarded by it.
type session struct {
	id    string
	vhost *Vhost

	queued atomic.Int32                  // len of the in-memory queue, readable without mu
	online atomic.Bool                   // client != nil, readable without mu (shared-subscription choice)
	idNow  atomic.Pointer[auth.Identity] // identity, readable without mu (read permission per message)
	// backlogN is len(backlog)-bhead, readable without mu: retained messages of new
	// subscriptions waiting for room, paced by the window instead of the queue limits.
	backlogN atomic.Int32
	dropped  atomic.Uint64 // messages not delivered to this session, every reason but offline QoS 0
	gate     readGate      // read permission per message, for subscriptions that need it

	mu       sync.Mutex
	client   *client        // attached connection; nil while offline
	identity *auth.Identity // of the last connection: live permission re-checks and wills use it
	version  packet.Version
	ended    bool   // removed from its vhost; deliveries are ignored
	stored   bool   // a record of it may be in the store
	expiry   uint32 // Session Expiry Interval in seconds
	subs     map[subKey]topic.Subscription
	queue    []delivery // QoS 1/2 messages waiting for the in-flight window, FIFO from qhead
	qhead    int
	qbytes   int
	backlog  []delivery // retained messages for new subscriptions, sent before anything queued
	bhead    int
	inflight map[uint16]outFlight
	nextPID  uint16
	order    uint64
	// inQoS2 holds the packet ids of QoS 2 messages received and passed on, until PUBREL
	// [MQTT-4.3.3-10]: a repeated PUBLISH with such an id is not delivered again.
	inQoS2 map[uint16]struct{}

	// Store bookkeeping for persistent sessions: entries after memTailSeq (spilled of them,
	// spilledBytes in size) are only in the store, not in queue.
	nextSeq      uint64
	memTailSeq   uint64
	spilled      int
	spilledBytes int
	spillTicket  store.Ticket // of the newest spilled entry: once durable, reloads need not wait

	will           *will       // Will of the attached connection
	pendingWill    *will       // Will of a closed connection, waiting for its delay or session end
	willDueAt      int64       // when pendingWill is due, unix nanoseconds
	willTimer      clock.Timer // fires pendingWill after its delay
	expiryTimer    clock.Timer // ends the offline session
	disconnectedAt int64       // unix nanoseconds, while offline
}

// drop counts a message not delivered to the session, for its vhost and for itself.
func (s *session) drop(r dropReason) {
	s.vhost.stats.drop(r)
	if r != dropOfflineQoS0 {
		s.dropped.Add(1)
	}
}

func newSession(v *Vhost, id string) *session {
	s := &session{id: id, vhost: v}
	s.gate.s, s.gate.authz = s, v.srv.opts.Authorizer // set once: allow reads them unlocked
	return s
}

// window is the number of QoS 1/2 messages that may be in flight to c: the smaller of the
// client's Receive Maximum [MQTT-3.3.4-9] and the server's max_inflight_messages. mu held.
func (s *session) window(c *client) int {
	return min(int(c.receiveMax), s.vhost.srv.limits.MaxInflight)
}

// deliver hands one message to the session: written to the connection at once when it is online
// and the in-flight window allows, otherwise queued (QoS 1/2) within the queue limits. For a
// persistent session a QoS 1/2 delivery is stored, and the returned ticket says when it is
// durable (0 when nothing was written).
func (s *session) deliver(d delivery, now int64) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return 0
	}
	c := s.client
	if d.qos == 0 {
		if c == nil {
			s.drop(dropOfflineQoS0)
			return 0
		}
		c.writePublish(&d, 0, false, now) // over the byte limit it is dropped and counted there
		return 0
	}
	if !s.roomLocked(&d) {
		s.drop(dropQueueFull)
		return 0
	}
	var t store.Ticket
	persist := s.persistent()
	if persist {
		s.nextSeq++
		d.seq = s.nextSeq
		_, t = s.vhost.srv.persist.ref(d.msg)
	}
	if c != nil && s.qlen() == 0 && s.spilled == 0 && s.backlogN.Load() == 0 && len(s.inflight) < s.window(c) {
		switch pid, res := s.sendLocked(c, d, now); res {
		case written:
			if persist {
				s.memTailSeq = d.seq
				t = max(t, s.putEntryLocked(&d, byte(awaitAck), pid))
			}
			return t
		case tooLarge:
			if persist {
				s.vhost.srv.persist.unref(d.msg.id) // discarded as if sent [MQTT-3.1.2-25]
			}
			return t
		}
	}
	if persist {
		et := s.putEntryLocked(&d, byte(queued), 0)
		t = max(t, et)
		if s.spilled > 0 || s.qlen() >= memQueueWindow {
			s.spilled++ // deep queues live in the store
			s.spilledBytes += d.size()
			s.spillTicket = et
			return t
		}
		s.memTailSeq = d.seq
	}
	s.queue = append(s.queue, d)
	s.qbytes += d.size()
	s.queued.Store(int32(s.qlen()))
	return t
}

// roomLocked reports whether the queue limits leave room for d: max_queued_messages and
// max_queued_bytes count what waits in memory and in the store. When they are reached the
// newest message is the one dropped. mu held.
func (s *session) roomLocked(d *delivery) bool {
	lim := &s.vhost.srv.limits
	return s.qlen()+s.spilled < lim.MaxQueued && s.qbytes+s.spilledBytes+d.size() <= lim.MaxQueuedBytes
}

// sendLocked assigns a packet id and writes d. mu held.
func (s *session) sendLocked(c *client, d delivery, now int64) (uint16, writeResult) {
	pid := s.nextIDLocked()
	res := c.writePublish(&d, pid, false, now)
	if res == written {
		s.order++
		s.setInflight(pid, outFlight{d: d, state: awaitAck, order: s.order})
	}
	return pid, res
}

// nextIDLocked returns an unused non-zero packet id [MQTT-2.2.1-3], [MQTT-2.2.1-4]. The in-flight
// window never exceeds 65535, so one is always free. mu held.
func (s *session) nextIDLocked() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if _, used := s.inflight[s.nextPID]; !used {
			return s.nextPID
		}
	}
}

func (s *session) qlen() int { return len(s.queue) - s.qhead }

func (s *session) popLocked() {
	s.qbytes -= s.queue[s.qhead].size()
	s.queue[s.qhead] = delivery{}
	s.qhead++
	switch {
	case s.qhead == len(s.queue):
		s.queue, s.qhead = s.queue[:0], 0
	case s.qhead >= 1024 && s.qhead*2 >= len(s.queue):
		n := copy(s.queue, s.queue[s.qhead:])
		clear(s.queue[n:])
		s.queue, s.qhead = s.queue[:n], 0
	}
	s.queued.Store(int32(s.qlen()))
}

// drain moves queued messages into the in-flight window while it and the connection have room.
func (s *session) drain(c *client) {
	if s.queued.Load() == 0 && s.backlogN.Load() == 0 {
		return
	}
	s.mu.Lock()
	if s.client == c {
		s.drainLocked(c)
	}
	s.mu.Unlock()
}

func (s *session) drainLocked(c *client) {
	now := s.vhost.srv.now().UnixNano()
	if !s.drainBacklogLocked(c, now) {
		return // retained messages first: nothing newer overtakes them
	}
	for len(s.inflight) < s.window(c) {
		if s.qlen() == 0 {
			if s.spilled == 0 {
				return
			}
			s.reloadLocked()
			if s.qlen() == 0 {
				return
			}
		}
		d := s.queue[s.qhead]
		if d.msg.expired(now) { // [MQTT-3.3.2-5]: expired before onward delivery began
			s.popLocked()
			s.forgetLocked(&d)
			s.drop(dropExpired)
			continue
		}
		pid, res := s.sendLocked(c, d, now)
		switch res {
		case written:
			if d.seq != 0 {
				s.putEntryLocked(&d, byte(awaitAck), pid)
			}
		case tooLarge:
			s.forgetLocked(&d)
		default:
			return
		}
		s.popLocked()
	}
}

// deliverRetained hands the retained messages of a new subscription to the session. They are
// sent as the window and the connection's buffer make room, before anything delivered later,
// and count against no queue limit: a '#' subscription over 100,000 retained messages gets them
// all, at the pace the client acknowledges them.
func (s *session) deliverRetained(c *client, ds []delivery) {
	if len(ds) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.client != c {
		return
	}
	s.backlog = append(s.backlog, ds...)
	s.backlogN.Store(int32(len(s.backlog) - s.bhead))
	s.drainLocked(c)
}

// drainBacklogLocked sends retained messages of new subscriptions while there is room, and
// reports whether the backlog is empty. mu held.
func (s *session) drainBacklogLocked(c *client, now int64) bool {
	for s.bhead < len(s.backlog) {
		d := s.backlog[s.bhead]
		if d.msg.expired(now) {
			s.drop(dropExpired)
		} else if d.qos == 0 {
			if res := c.writePublish(&d, 0, false, now); res == full || res == closingConn {
				s.backlogN.Store(int32(len(s.backlog) - s.bhead))
				return false
			}
		} else {
			if len(s.inflight) >= s.window(c) {
				s.backlogN.Store(int32(len(s.backlog) - s.bhead))
				return false
			}
			if _, res := s.sendLocked(c, d, now); res == full || res == closingConn {
				s.backlogN.Store(int32(len(s.backlog) - s.bhead))
				return false
			}
		}
		s.backlog[s.bhead] = delivery{}
		s.bhead++
	}
	if cap(s.backlog) > memQueueWindow {
		s.backlog = nil // a big burst does not pin its memory
	}
	s.backlog, s.bhead = s.backlog[:0], 0
	s.backlogN.Store(0)
	return true
}

// resendLocked retransmits the in-flight messages to a resumed connection, in their original
// order: PUBLISH with DUP set for those not yet acknowledged, PUBREL for those past PUBREC
// [MQTT-4.4.0-1], [MQTT-4.4.0-2], [MQTT-3.3.1-1]. mu held.
func (s *session) resendLocked(c *client) {
	if len(s.inflight) == 0 {
		return
	}
	type entry struct {
		pid uint16
		f   outFlight
	}
	all := make([]entry, 0, len(s.inflight))
	for pid, f := range s.inflight {
		all = append(all, entry{pid, f})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.f.order, b.f.order) })
	now := s.vhost.srv.now().UnixNano()
	for _, e := range all {
		if e.f.state == awaitPubcomp {
			c.sendAck(packet.PUBREL, e.pid, packet.Success)
			continue
		}
		c.writePublish(&e.f.d, e.pid, true, now)
	}
}

// acked completes the flow of an outbound message on PUBACK, PUBREC or PUBCOMP and reports
// whether the packet id was in the expected state. A PUBREC with a success code moves the
// message to awaitPubcomp and the caller answers PUBREL.
func (s *session) acked(c *client, t packet.Type, pid uint16, code packet.ReasonCode) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.inflight[pid]
	if !ok {
		return false
	}
	qos2 := f.d.qos == 2
	switch {
	case t == packet.PUBACK && f.state == awaitAck && !qos2,
		t == packet.PUBCOMP && f.state == awaitPubcomp,
		t == packet.PUBREC && f.state == awaitAck && qos2 && code.IsError(): // the flow ends on an error PUBREC (4.3.3)
		delete(s.inflight, pid)
		s.forgetLocked(&f.d)
	case t == packet.PUBREC && qos2 && f.state != queued:
		if f.state == awaitAck && f.d.seq != 0 {
			s.putEntryLocked(&f.d, byte(awaitPubcomp), pid)
		}
		f.state = awaitPubcomp
		s.setInflight(pid, f)
		return true
	default:
		return false
	}
	if s.client == c {
		s.drainLocked(c)
	}
	return true
}

// subscribeLocked records a subscription in the session and the vhost's index, and reports
// whether it replaced an existing one (for Retain Handling 1 [MQTT-3.3.1-10]). mu held.
func (s *session) subscribeLocked(sub topic.Subscription) bool {
	s.setSub(sub)
	return s.vhost.index.Subscribe(sub)
}

// The session's maps are made when first written: a connection that never subscribes, receives
// QoS 1/2 or sends QoS 2 keeps none (48 bytes each, made and collected at every login
// otherwise). Reads, deletes and clear work on a nil map. mu held (or the session not yet
// shared: recovery).

func (s *session) setSub(sub topic.Subscription) {
	if s.subs == nil {
		s.subs = make(map[subKey]topic.Subscription)
	}
	s.subs[subKey{sub.Group, sub.Filter}] = sub
}

func (s *session) setInflight(pid uint16, f outFlight) {
	if s.inflight == nil {
		s.inflight = make(map[uint16]outFlight)
	}
	s.inflight[pid] = f
}

func (s *session) addInQoS2(pid uint16) {
	if s.inQoS2 == nil {
		s.inQoS2 = make(map[uint16]struct{})
	}
	s.inQoS2[pid] = struct{}{}
}

func (s *session) unsubscribeLocked(group, filter string) bool {
	delete(s.subs, subKey{group, filter})
	return s.vhost.index.Unsubscribe(s, group, filter)
}

// endLocked ends the session: its subscriptions leave the index, its state is dropped, and so is
// its record in the store. The caller removes it from the vhost's map and publishes the pending
// will it returns, if any. Vhost.mu and mu held.
func (s *session) endLocked() *will {
	if s.ended {
		return nil
	}
	if s.stored {
		s.dropStoredLocked()
	}
	s.ended = true
	for k := range s.subs {
		s.vhost.index.Unsubscribe(s, k.group, k.filter)
	}
	clear(s.subs) // emptied, not nil: a stale handler of a closing connection finds nothing to panic on
	if n := s.qlen() + s.spilled; n > 0 {
		s.vhost.stats.dropN(dropSessionEnded, uint64(n))
	}
	s.queue, s.qhead, s.qbytes, s.spilled, s.spilledBytes = nil, 0, 0, 0, 0
	s.queued.Store(0)
	s.backlog, s.bhead = nil, 0
	s.backlogN.Store(0)
	clear(s.inflight)
	clear(s.inQoS2)
	stopTimer(&s.expiryTimer)
	stopTimer(&s.willTimer)
	w := s.pendingWill
	s.pendingWill = nil
	return w
}

func stopTimer(t *clock.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
