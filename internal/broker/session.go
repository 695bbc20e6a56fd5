package broker

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// Session Expiry Interval meaning "never expires" [MQTT-3.1.2-?, 3.1.2.11.2].
const expiryNever = 0xFFFFFFFF

// flightState is where an outbound QoS 1/2 message stands in its acknowledgement flow.
type flightState uint8

const (
	awaitPuback  flightState = iota // QoS 1 PUBLISH sent
	awaitPubrec                     // QoS 2 PUBLISH sent
	awaitPubcomp                    // QoS 2 PUBREL sent
)

// outFlight is one unacknowledged outbound message, kept by packet id until its flow completes.
type outFlight struct {
	d     delivery
	state flightState
	seq   uint64 // send order, for retransmission in the original order [MQTT-4.6.0-1]
}

// will is a Will Message waiting for its connection to end (3.1.2.5).
type will struct {
	msg            *Message
	delay          time.Duration // Will Delay Interval (v5)
	expiryInterval uint32        // Message Expiry Interval, counted from publication
	hasExpiry      bool
}

// subKey identifies one of a session's subscriptions: a shared group and a filter.
type subKey struct{ group, filter string }

// session is the server side of an MQTT session (4.1): it outlives connections when its
// Session Expiry Interval (or 3.1.1 Clean Session = 0) says so. Every field below mu is guarded
// by it.
type session struct {
	id    string
	vhost *Vhost

	queued atomic.Int32 // len of queue, readable without mu
	online atomic.Bool  // client != nil, readable without mu (shared-subscription choice)

	mu       sync.Mutex
	client   *client // attached connection; nil while offline
	ended    bool    // removed from its vhost; deliveries are ignored
	expiry   uint32  // Session Expiry Interval in seconds
	subs     map[subKey]topic.Subscription
	queue    []delivery // QoS 1/2 messages waiting for the in-flight window, FIFO from qhead
	qhead    int
	qbytes   int
	inflight map[uint16]outFlight
	nextPID  uint16
	seq      uint64
	// inQoS2 holds the packet ids of QoS 2 messages received and passed on, until PUBREL
	// [MQTT-4.3.3-10]: a repeated PUBLISH with such an id is not delivered again.
	inQoS2 map[uint16]struct{}

	will        *will       // Will of the attached connection
	pendingWill *will       // Will of a closed connection, waiting for its delay or session end
	willTimer   *time.Timer // fires pendingWill after its delay
	expiryTimer *time.Timer // ends the offline session
}

func newSession(v *Vhost, id string) *session {
	return &session{
		id:       id,
		vhost:    v,
		subs:     make(map[subKey]topic.Subscription),
		inflight: make(map[uint16]outFlight),
		inQoS2:   make(map[uint16]struct{}),
	}
}

// window is the number of QoS 1/2 messages that may be in flight to c: the smaller of the
// client's Receive Maximum [MQTT-3.3.4-9] and the server's max_inflight_messages. mu held.
func (s *session) window(c *client) int {
	w := int(c.receiveMax)
	if m := s.vhost.srv.limits.maxInflight; m < w {
		w = m
	}
	return w
}

// deliver hands one message to the session: written to the connection at once when it is online
// and the in-flight window allows, otherwise queued (QoS 1/2) within the queue limits.
func (s *session) deliver(d delivery, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	c := s.client
	if d.qos == 0 {
		if c == nil {
			s.vhost.stats.drop(dropOfflineQoS0)
			return
		}
		c.writePublish(&d, 0, false, now) // over the byte limit it is dropped and counted there
		return
	}
	if c != nil && s.qlen() == 0 && len(s.inflight) < s.window(c) && s.sendLocked(c, d, now) {
		return
	}
	s.enqueueLocked(d)
}

// sendLocked assigns a packet id and writes d; false means the connection had no room and d was
// not sent. mu held.
func (s *session) sendLocked(c *client, d delivery, now int64) bool {
	pid := s.nextIDLocked()
	switch c.writePublish(&d, pid, false, now) {
	case written:
		st := awaitPuback
		if d.qos == 2 {
			st = awaitPubrec
		}
		s.seq++
		s.inflight[pid] = outFlight{d: d, state: st, seq: s.seq}
		return true
	case tooLarge:
		return true // discarded as if sent [MQTT-3.1.2-25]
	default:
		return false
	}
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

// enqueueLocked appends d to the queue, or drops it when the queue is at max_queued_messages or
// max_queued_bytes: the newest message is the one dropped, and the drop is counted. mu held.
func (s *session) enqueueLocked(d delivery) {
	lim := &s.vhost.srv.limits
	if s.qlen() >= lim.maxQueued || s.qbytes+d.size() > lim.maxQueuedBytes {
		s.vhost.stats.drop(dropQueueFull)
		return
	}
	s.queue = append(s.queue, d)
	s.qbytes += d.size()
	s.queued.Store(int32(s.qlen()))
}

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
	if s.queued.Load() == 0 {
		return
	}
	s.mu.Lock()
	if s.client == c {
		s.drainLocked(c)
	}
	s.mu.Unlock()
}

func (s *session) drainLocked(c *client) {
	now := time.Now().UnixNano()
	for s.qlen() > 0 && len(s.inflight) < s.window(c) {
		d := s.queue[s.qhead]
		if d.msg.expired(now) { // [MQTT-3.3.2-5]: expired before onward delivery began
			s.popLocked()
			s.vhost.stats.drop(dropExpired)
			continue
		}
		if !s.sendLocked(c, d, now) {
			return
		}
		s.popLocked()
	}
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
	slices.SortFunc(all, func(a, b entry) int { return int(a.f.seq - b.f.seq) })
	now := time.Now().UnixNano()
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
	switch {
	case !ok:
		return false
	case t == packet.PUBACK && f.state == awaitPuback,
		t == packet.PUBCOMP && f.state == awaitPubcomp,
		t == packet.PUBREC && f.state == awaitPubrec && code.IsError(): // [MQTT-4.3.3-?]: flow ends on an error PUBREC
		delete(s.inflight, pid)
	case t == packet.PUBREC && (f.state == awaitPubrec || f.state == awaitPubcomp):
		f.state = awaitPubcomp
		s.inflight[pid] = f
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
	s.subs[subKey{sub.Group, sub.Filter}] = sub
	return s.vhost.index.Subscribe(sub)
}

func (s *session) unsubscribeLocked(group, filter string) bool {
	delete(s.subs, subKey{group, filter})
	return s.vhost.index.Unsubscribe(s, group, filter)
}

// endLocked ends the session: its subscriptions leave the index and its state is dropped. The
// caller removes it from the vhost's map and publishes the pending will it returns, if any.
// Vhost.mu and mu held.
func (s *session) endLocked() *will {
	s.ended = true
	for k := range s.subs {
		s.vhost.index.Unsubscribe(s, k.group, k.filter)
	}
	s.subs = nil
	if n := s.qlen(); n > 0 {
		s.vhost.stats.dropN(dropSessionEnded, uint64(n))
	}
	s.queue, s.qhead, s.qbytes = nil, 0, 0
	s.queued.Store(0)
	s.inflight, s.inQoS2 = nil, nil
	stopTimer(&s.expiryTimer)
	stopTimer(&s.willTimer)
	w := s.pendingWill
	s.pendingWill = nil
	return w
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
