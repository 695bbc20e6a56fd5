package broker

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// The query and command methods the management API is a thin layer over. They are tested
// without HTTP (admin_test.go).

// ConnectionInfo describes one open, connected MQTT connection.
type ConnectionInfo struct {
	Name             string // "<peer> -> <local>", LavinMQ's naming; the key of CloseConnection
	Vhost            string
	User             string
	ClientID         string
	Protocol         string // "MQTT 3.1", "MQTT 3.1.1" or "MQTT 5.0"
	Peer             string
	Listener         string // tcp, tls, ws, wss, unix
	TLS              bool
	ConnectedAt      time.Time
	AuthMethod       string
	CredentialExpiry time.Time // zero: none
	KeepAlive        int       // seconds
	MessagesIn       uint64
	MessagesOut      uint64
	BytesIn          uint64
	BytesOut         uint64
}

func (c *client) info() ConnectionInfo {
	ci := ConnectionInfo{
		Name:        c.remote + " -> " + c.conn.LocalAddr().String(),
		ClientID:    c.clientID,
		Protocol:    "MQTT " + c.version.String(),
		Peer:        c.remote,
		Listener:    c.listener,
		TLS:         c.listener == "tls" || c.listener == "wss",
		ConnectedAt: c.connectedAt,
		KeepAlive:   int(c.keepAlive / time.Second),
		MessagesIn:  c.msgsIn.Load(),
		BytesIn:     c.bytesIn.Load(),
		BytesOut:    c.bytesOut.Load(),
	}
	if c.vhost != nil {
		ci.Vhost = c.vhost.name
	}
	if id := c.id(); id != nil {
		ci.User, ci.AuthMethod, ci.CredentialExpiry = id.User, id.Method, id.Expiry
	}
	c.out.mu.Lock()
	ci.MessagesOut = c.out.msgsOut
	c.out.mu.Unlock()
	return ci
}

// Connections lists the connected clients of a vhost, or of every vhost when vhost is "",
// sorted by name.
func (s *Server) Connections(vhost string) []ConnectionInfo {
	var out []ConnectionInfo
	for _, v := range s.vhostList() {
		if vhost != "" && v.name != vhost {
			continue
		}
		v.mu.Lock()
		for c := range v.clients {
			out = append(out, c.info())
		}
		v.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CloseConnection closes the named connection with v5 DISCONNECT 0x98 (Administrative action).
// Its will is published, as for any close the client did not ask for, unless withWill is false:
// then it is discarded and reported (will-and-expiry.md §4, "admin kick").
func (s *Server) CloseConnection(name string, withWill bool) bool {
	found := false
	for _, v := range s.vhostList() {
		v.mu.Lock()
		for c := range v.clients {
			if c.remote+" -> "+c.conn.LocalAddr().String() == name {
				if !withWill {
					c.discardWill(event.WillDiscarded)
				}
				c.close(errAdminClosed, packet.AdministrativeAction)
				found = true
			}
		}
		v.mu.Unlock()
	}
	return found
}

// SubscriptionInfo is one subscription of a session.
type SubscriptionInfo struct {
	Filter            string // with the $share/{group}/ prefix for a shared subscription
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32
}

// SessionInfo describes one session, listed as LavinMQ lists it: a queue "mqtt.<client_id>".
type SessionInfo struct {
	Name           string // "mqtt.<client_id>"
	Vhost          string
	ClientID       string
	User           string // the user name of the identity that owns it ("" before any login)
	Connected      bool
	Durable        bool   // outlives its connection (expiry > 0)
	ExpiryInterval uint32 // seconds; 4294967295 = never
	ExpiresAt      time.Time
	Queued         int    // messages waiting (in memory and in the store)
	Inflight       int    // sent, not yet acknowledged
	Dropped        uint64 // messages not delivered to it since it was created (queue full, expired, too large)
	Subscriptions  []SubscriptionInfo
	// Will is the session's will: its connection's, or a delayed one pending; nil when none.
	Will *WillInfo
}

// WillInfo describes a will without its payload.
type WillInfo struct {
	Topic    string
	QoS      byte
	Retain   bool
	Delay    time.Duration // Will Delay Interval
	Pending  bool          // earned, waiting for its delay (the connection is gone)
	EarnedAt time.Time     // zero while the connection is up
	FiresAt  time.Time     // when a pending will is due
}

func willInfo(w *will, pending bool, dueAt int64) *WillInfo {
	if w == nil {
		return nil
	}
	wi := &WillInfo{Topic: w.msg.Topic, QoS: w.msg.QoS, Retain: w.msg.Retain, Delay: w.delay, Pending: pending, EarnedAt: w.earnedAt}
	if pending && dueAt != 0 {
		wi.FiresAt = time.Unix(0, dueAt)
	}
	return wi
}

func (ss *session) info() SessionInfo {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	si := SessionInfo{Name: "mqtt." + ss.id, Vhost: ss.vhost.name, ClientID: ss.id, Connected: ss.client != nil,
		Durable: ss.expiry > 0, ExpiryInterval: ss.expiry, Queued: ss.qlen() + ss.spilled + int(ss.backlogN.Load()),
		Inflight: len(ss.inflight), Dropped: ss.dropped.Load()}
	if ss.identity != nil {
		si.User = ss.identity.User
	}
	if ss.client == nil && ss.expiry != expiryNever && ss.disconnectedAt != 0 {
		si.ExpiresAt = time.Unix(0, ss.disconnectedAt).Add(time.Duration(ss.expiry) * time.Second)
	}
	if ss.pendingWill != nil {
		si.Will = willInfo(ss.pendingWill, true, ss.willDueAt)
	} else {
		si.Will = willInfo(ss.will, false, 0)
	}
	for _, sub := range ss.subs {
		f := sub.Filter
		if sub.Group != "" {
			f = topic.SharePrefix + sub.Group + "/" + sub.Filter
		}
		si.Subscriptions = append(si.Subscriptions, SubscriptionInfo{Filter: f, QoS: sub.QoS, NoLocal: sub.NoLocal,
			RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, ID: sub.ID})
	}
	slices.SortFunc(si.Subscriptions, func(a, b SubscriptionInfo) int { return cmp.Compare(a.Filter, b.Filter) })
	return si
}

// Sessions lists a vhost's sessions sorted by client id; ok is false when the vhost does not exist.
func (s *Server) Sessions(vhost string) (out []SessionInfo, ok bool) {
	v := s.Vhost(vhost)
	if v == nil {
		return nil, false
	}
	v.mu.Lock()
	list := make([]*session, 0, len(v.sessions))
	for _, ss := range v.sessions {
		list = append(list, ss)
	}
	v.mu.Unlock()
	for _, ss := range list {
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, true
}

// DeleteSession removes a session: its client, if connected, gets DISCONNECT 0x98 and its state
// is removed from memory and the store. Its will (or pending will) is published, as when a
// session ends, unless withWill is false: then it is discarded and reported.
func (s *Server) DeleteSession(vhost, clientID string, withWill bool) bool {
	v := s.Vhost(vhost)
	if v == nil {
		return false
	}
	var w *will
	v.mu.Lock()
	ss := v.sessions[clientID]
	if ss != nil {
		ss.mu.Lock()
		if c := ss.client; c != nil {
			ss.client = nil
			ss.online.Store(false)
			c.close(errAdminClosed, packet.AdministrativeAction)
			if w, ss.will = ss.will, nil; w != nil {
				earn(w, c.id(), s.now())
			}
		}
		if pw := ss.endLocked(); pw != nil {
			w = pw
		}
		ss.mu.Unlock()
		delete(v.sessions, clientID)
	}
	v.mu.Unlock()
	switch {
	case w == nil:
	case withWill:
		v.publishWill(w)
	default:
		v.suppressWill(w, event.WillDiscarded, "the session was deleted without its will")
	}
	return ss != nil
}

// RetainedInfo is one retained message.
type RetainedInfo struct {
	Topic   string
	Payload []byte
	QoS     byte
	Expiry  time.Time // zero: none
}

// Retained lists the retained messages of a vhost matching filter ("#" for all), sorted by topic,
// at most limit of them (limit <= 0: all); ok is false when the vhost does not exist.
func (s *Server) Retained(vhost, filter string, limit int) (out []RetainedInfo, ok bool) {
	v := s.Vhost(vhost)
	if v == nil {
		return nil, false
	}
	now := s.now().UnixNano()
	v.retained.Match(filter, func(name string, m *Message) bool {
		if m.expired(now) {
			return true
		}
		ri := RetainedInfo{Topic: name, Payload: m.Payload, QoS: m.QoS}
		if m.Expiry != 0 {
			ri.Expiry = time.Unix(0, m.Expiry)
		}
		out = append(out, ri)
		return limit <= 0 || len(out) < limit
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, true
}

// DeleteRetained removes the retained message of a topic, in memory and in the store.
func (s *Server) DeleteRetained(vhost, topicName string) bool {
	v := s.Vhost(vhost)
	if v == nil {
		return false
	}
	v.retainMu.Lock()
	ok := v.retained.Delete(topicName)
	if ok && s.persist != nil {
		s.persist.st.DeleteRetained(vhost, topicName)
	}
	v.retainMu.Unlock()
	return ok
}

// Overview sums the statistics of every vhost. Counts of logins, refusals and denials are
// events (package event), counted by their observers.
type Overview struct {
	Version  string
	Uptime   time.Duration
	Vhosts   int
	Totals   SysStats
	PerVhost map[string]SysStats
}

// Overview reports the server's statistics.
func (s *Server) Overview() Overview {
	o := Overview{Version: s.opts.Version, Uptime: s.now().Sub(s.started), PerVhost: map[string]SysStats{}}
	for _, v := range s.vhostList() {
		st := v.Stats()
		o.PerVhost[v.name] = st
		o.Vhosts++
		t := &o.Totals
		t.ClientsConnected += st.ClientsConnected
		t.Sessions += st.Sessions
		t.MessagesReceived += st.MessagesReceived
		t.MessagesSent += st.MessagesSent
		t.BytesReceived += st.BytesReceived
		t.BytesSent += st.BytesSent
		t.Dropped += st.Dropped
		t.Retained += st.Retained
		t.Subscriptions += st.Subscriptions
		t.Queued += st.Queued
		for r, n := range st.DroppedBy {
			if t.DroppedBy == nil {
				t.DroppedBy = map[string]uint64{}
			}
			t.DroppedBy[r] += n
		}
	}
	return o
}

func (s *Server) vhostList() []*Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := make([]*Vhost, 0, len(s.vhosts))
	for _, v := range s.vhosts {
		vs = append(vs, v)
	}
	return vs
}

// VhostStats returns the statistics of one vhost; ok is false when it does not exist.
func (s *Server) VhostStats(name string) (st SysStats, ok bool) {
	v := s.Vhost(name)
	if v == nil {
		return SysStats{}, false
	}
	return v.Stats(), true
}

// ClientDrops is one session's count of messages not delivered to it.
type ClientDrops struct {
	Vhost, ClientID string
	Dropped         uint64
}

// TopDrops returns the sessions with the most undelivered messages, at most n, the most first;
// sessions without drops are left out (a bounded list for /metrics).
func (s *Server) TopDrops(n int) []ClientDrops {
	var out []ClientDrops
	for _, v := range s.vhostList() {
		v.mu.Lock()
		for id, ss := range v.sessions {
			if d := ss.dropped.Load(); d > 0 {
				out = append(out, ClientDrops{Vhost: v.name, ClientID: id, Dropped: d})
			}
		}
		v.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ClientDrops) int { return cmp.Compare(b.Dropped, a.Dropped) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}
