package broker

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// What an authenticated client may hold, and how often a source may connect (docs/security.md,
// "Limits"). Every limit is checked where its count cannot race:
//
//   - connections (global [mqtt] max_connections, a vhost's and a user's max-connections) are
//     reserved under the vhost's mu right before a CONNECT attaches, after any takeover of its
//     client id has ended (so a reconnect never counts twice), and released when the
//     connection's read loop ends;
//   - a vhost's max-sessions is checked under the vhost's mu, which also guards the session map;
//   - [mqtt] max_subscriptions_per_client under the session's mu, which guards its subscriptions;
//   - a vhost's max-retained counts the retained publishes in flight as well as those stored,
//     so parallel publishes of new topics cannot overshoot.
//
// Lock order: Vhost.mu → session.mu → guard.mu; guard.mu is a leaf.

// guard is the server's state for limits, bans and the login log. Its zero value is ready.
type guard struct {
	mu       sync.Mutex
	conns    map[*client]connSlot // the connections that hold a slot
	total    int
	byVhost  map[string]int
	byUser   map[string]int
	retained map[*client]string // vhost of a retained publish in flight that holds a slot
	pending  map[string]int     // retained publishes in flight, by vhost

	rate   rateTable
	logins loginLog
}

type connSlot struct{ vhost, user string }

// limitError is a CONNECT refused by a limit or a ban: its CONNACK code and event reason.
type limitError struct {
	code   packet.ReasonCode
	reason string // an event.Limit… constant or event.ReasonBanned
	msg    string
}

func (e *limitError) Error() string { return e.msg }

// vhostLimit is a vhost's limit name: its own when set, else def (0: none). -1 is no limit.
func (v *Vhost) vhostLimit(name string, def int) int64 {
	if q := v.srv.opts.Quotas; q != nil {
		if n, ok := q.VhostLimit(v.name, name); ok {
			return max(n, -1)
		}
	}
	if def <= 0 {
		return -1
	}
	return int64(def)
}

// admitLocked is the last check of a CONNECT, right before it attaches to session s (nil: a new
// session is created): bans, now that the identity is known (a ban added while this CONNECT was
// authenticated is seen here, or its sweep sees the attached connection: both hold v.mu), the
// vhost's max-sessions, and the connection limits, whose slot it takes. v.mu held.
func (v *Vhost) admitLocked(c *client, s *session) error {
	srv := v.srv
	if b := srv.opts.Bans; b != nil {
		if why, banned := b.Banned(c.clientID, c.id().User, remoteIP(c.conn), srv.now()); banned {
			return &limitError{packet.Banned, event.ReasonBanned, why}
		}
	}
	if s == nil {
		if m := v.vhostLimit("max-sessions", srv.limits.MaxSessionsPerVhost); m >= 0 && int64(len(v.sessions)) >= m {
			return &limitError{packet.QuotaExceeded, event.LimitVhostMaxSessions,
				fmt.Sprintf("vhost %s has %d sessions, its max-sessions", v.name, m)}
		}
	}
	return srv.reserveConn(c, v)
}

// reserveConn takes a connection slot for c in vhost v, or refuses it at the first full limit.
func (s *Server) reserveConn(c *client, v *Vhost) error {
	user := c.id().User
	userMax := int64(-1)
	if q := s.opts.Quotas; q != nil {
		if n, ok := q.UserLimit(user, "max-connections"); ok {
			userMax = max(n, -1)
		}
	}
	vhostMax := v.vhostLimit("max-connections", 0)
	g := &s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case s.limits.MaxConnections > 0 && g.total >= s.limits.MaxConnections:
		return &limitError{packet.QuotaExceeded, event.LimitMaxConnections,
			fmt.Sprintf("%d clients connected, [mqtt] max_connections", g.total)}
	case vhostMax >= 0 && int64(g.byVhost[v.name]) >= vhostMax:
		return &limitError{packet.QuotaExceeded, event.LimitVhostMaxConnections,
			fmt.Sprintf("vhost %s has %d connections, its max-connections", v.name, vhostMax)}
	case userMax >= 0 && int64(g.byUser[user]) >= userMax:
		return &limitError{packet.QuotaExceeded, event.LimitUserMaxConnections,
			fmt.Sprintf("user %s has %d connections, its max-connections", user, userMax)}
	}
	if g.conns == nil {
		g.conns, g.byVhost, g.byUser = map[*client]connSlot{}, map[string]int{}, map[string]int{}
	}
	g.conns[c] = connSlot{v.name, user}
	g.total++
	g.byVhost[v.name]++
	g.byUser[user]++
	return nil
}

// releaseConn gives back c's connection slot, if it holds one. Called once its read loop ends.
func (s *Server) releaseConn(c *client) {
	g := &s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	slot, ok := g.conns[c]
	if !ok {
		return
	}
	delete(g.conns, c)
	g.total--
	if g.byVhost[slot.vhost]--; g.byVhost[slot.vhost] <= 0 {
		delete(g.byVhost, slot.vhost)
	}
	if g.byUser[slot.user]--; g.byUser[slot.user] <= 0 {
		delete(g.byUser, slot.user)
	}
}

// ConnectionCounts returns the connections holding a slot: in all, by vhost and by user.
func (s *Server) ConnectionCounts() (total int, byVhost, byUser map[string]int) {
	g := &s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	byVhost, byUser = make(map[string]int, len(g.byVhost)), make(map[string]int, len(g.byUser))
	for k, n := range g.byVhost {
		byVhost[k] = n
	}
	for k, n := range g.byUser {
		byUser[k] = n
	}
	return g.total, byVhost, byUser
}

// refuseConnect answers a CONNECT that Vhost.connect refused: a limit or a ban with its own
// code (v5 0x97 Quota exceeded or 0x8A Banned; 3.1.1 return codes 3 and 5), anything else as
// 0x89 Server busy (3.1.1: 3).
func (c *client) refuseConnect(err error, user string) error {
	if le := (*limitError)(nil); errors.As(err, &le) {
		return c.refuseAs(event.Refused, le.code, le.reason, le.msg, user)
	}
	return c.refuse(packet.ServerBusy, err.Error())
}

// overSubscriptionLimit reports whether a subscription to (group, filter) would take session s
// past [mqtt] max_subscriptions_per_client (a repeated filter replaces its subscription and
// takes nothing more), and reports it when it would: SUBACK then carries 0x97 Quota exceeded
// (3.1.1: 0x80 Failure). s.mu held.
func (c *client) overSubscriptionLimit(s *session, group, filter string) bool {
	m := c.srv.limits.MaxSubscriptions
	if m <= 0 || len(s.subs) < m {
		return false
	}
	if _, ok := s.subs[subKey{group, filter}]; ok {
		return false
	}
	c.limitExceeded(event.LimitMaxSubscriptions, filter, fmt.Sprintf("the session has %d subscriptions, [mqtt] max_subscriptions_per_client", m))
	return true
}

// reserveRetained admits a retained PUBLISH p against the vhost's max-retained: replacing or
// clearing a topic's message always passes; a new topic passes while the messages stored plus
// the retained publishes in flight stay below the limit. Every retained publish with a payload
// counts as in flight until releaseRetained, so that a topic cleared meanwhile cannot let a
// replacement overshoot. A refused publish is answered v5 PUBACK/PUBREC 0x97, and acknowledged
// without being stored or delivered in 3.1.1 (the denial convention of handlePublish).
func (c *client) reserveRetained(p *packet.Publish) bool {
	if !p.Retain || len(p.Payload) == 0 {
		return true
	}
	v := c.vhost
	m := v.vhostLimit("max-retained", c.srv.limits.MaxRetainedPerVhost)
	if m < 0 {
		return true
	}
	_, exists := v.retained.Get(p.Topic)
	g := &c.srv.guard
	g.mu.Lock()
	if !exists && int64(v.retained.Len()+g.pending[v.name]) >= m {
		g.mu.Unlock()
		c.limitExceeded(event.LimitVhostMaxRetained, p.Topic, fmt.Sprintf("vhost %s holds its max-retained, %d retained messages", v.name, m))
		return false
	}
	if g.pending == nil {
		g.pending, g.retained = map[string]int{}, map[*client]string{}
	}
	g.pending[v.name]++
	g.retained[c] = v.name
	g.mu.Unlock()
	return true
}

// releaseRetained ends the retained publish in flight that reserveRetained admitted.
func (c *client) releaseRetained(p *packet.Publish) {
	if !p.Retain || len(p.Payload) == 0 {
		return
	}
	g := &c.srv.guard
	g.mu.Lock()
	if vhost, ok := g.retained[c]; ok {
		delete(g.retained, c)
		if g.pending[vhost]--; g.pending[vhost] <= 0 {
			delete(g.pending, vhost)
		}
	}
	g.mu.Unlock()
}

// limitExceeded reports an action of a connected client refused by a limit: an event each
// time, a log line at most once a second (as authorization denials).
func (c *client) limitExceeded(limit, target, detail string) {
	c.srv.observe(event.Event{Kind: event.LimitExceeded, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
		ClientID: c.clientID, User: c.id().User, Identity: c.id(), Code: byte(packet.QuotaExceeded),
		Reason: limit, Topic: target, Detail: detail})
	if c.srv.denyLog.allow(time.Now()) {
		c.logf(slog.LevelWarn, "limit exceeded", "limit", limit, "target", target, "detail", detail)
	}
}

// admitEarly is the first check of a CONNECT, before any credential is checked: the connect
// rate of its source address, then the bans on its client id, its address and the user name it
// presents. A refusal is answered (v5 0x9F Connection rate exceeded or 0x8A Banned; 3.1.1
// return codes 3 and 5), reported and logged (at most once per source a minute), and returned.
func (c *client) admitEarly(username, clientID string) error {
	srv := c.srv
	addr := remoteIP(c.conn)
	now := srv.now()
	if lim := &srv.limits; lim.ConnectRate > 0 && !c.exemptFromConnectRate(addr) {
		if !srv.guard.rate.allow(addr, now, lim.ConnectRate, lim.ConnectBurst) {
			why := fmt.Sprintf("more than %g CONNECTs a second from this address", lim.ConnectRate)
			return c.refuseEarly(packet.ConnectionRateExceeded, event.LimitConnectRate, clientID, username, why)
		}
	}
	if b := srv.opts.Bans; b != nil {
		user := username
		if i := strings.IndexByte(username, ':'); i >= 0 { // vhost:username, split as authenticate does
			user = username[i+1:]
		}
		if why, banned := b.Banned(clientID, user, addr, now); banned {
			return c.refuseEarly(packet.Banned, event.ReasonBanned, clientID, username, why)
		}
	}
	return nil
}

// exemptFromConnectRate: a unix socket, and a loopback address when configured so (a local
// proxy's clients all come from it), unless a browser opened the connection.
func (c *client) exemptFromConnectRate(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	if !c.srv.limits.ConnectRateExemptLoopback || !addr.IsLoopback() {
		return false
	}
	return c.connMeta().BrowserOrigin == ""
}

// refuseEarly answers a CONNECT refused before authentication, and reports and logs it.
func (c *client) refuseEarly(code packet.ReasonCode, reason, clientID, username, why string) error {
	c.srv.logRefused(c, clientID, why)
	c.srv.observe(event.Event{Kind: event.Refused, Listener: c.listener, Remote: c.remote, ClientID: clientID, User: username,
		Code: byte(code), Reason: reason, Detail: why})
	c.sendConnack(&packet.Connack{ReasonCode: code})
	return &packet.Error{Code: code, Field: "CONNECT", Err: fmt.Errorf("%s", why)}
}

// rateTable is a token bucket per source address, bounded: the least recently used source is
// forgotten first (it comes back with a full bucket).
type rateTable struct {
	mu  sync.Mutex
	m   map[netip.Prefix]*list.Element
	lru list.List // of *rateEntry, most recently used at the front
}

type rateEntry struct {
	key    netip.Prefix
	tokens float64
	last   time.Time
}

// maxRateSources bounds the table of connect rates.
const maxRateSources = 65536

// allow takes a token from the bucket of addr's source, refilled at rate per second up to
// burst, and reports whether there was one.
func (t *rateTable) allow(addr netip.Addr, now time.Time, rate float64, burst int) bool {
	key, ok := auth.SourceKey(addr)
	if !ok {
		return true
	}
	burst = max(burst, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[netip.Prefix]*list.Element{}
	}
	el, ok := t.m[key]
	if !ok {
		if len(t.m) >= maxRateSources {
			back := t.lru.Back()
			delete(t.m, back.Value.(*rateEntry).key)
			t.lru.Remove(back)
		}
		el = t.lru.PushFront(&rateEntry{key: key, tokens: float64(burst), last: now})
		t.m[key] = el
	}
	t.lru.MoveToFront(el)
	e := el.Value.(*rateEntry)
	if d := now.Sub(e.last); d > 0 {
		e.tokens = min(float64(burst), e.tokens+d.Seconds()*rate)
		e.last = now
	}
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}
