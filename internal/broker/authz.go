package broker

import (
	"errors"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// throttle lets a log line through at most once a second: every denial and every limit refusal
// is an event (counted and audited); the WARN line that names it is not written for each, so a
// looping client cannot flood the log.
type throttle struct {
	mu   sync.Mutex
	last time.Time
}

// allow reports whether a line may be written now, and if so starts the next second.
func (t *throttle) allow(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last) < time.Second {
		return false
	}
	t.last = now
	return true
}

// deny reports an authorization denial of a connected client's action.
func (s *Server) deny(c *client, action acl.Action, what string, err error) {
	s.observe(event.Event{Kind: event.Denied, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
		ClientID: c.clientID, User: c.id().User, Identity: c.id(), Code: byte(packet.NotAuthorized),
		Action: action.String(), Topic: what, Detail: err.Error()})
	if s.denyLog.allow(time.Now()) {
		c.logf(slog.LevelWarn, "not authorized", "action", action.String(), "target", what, "rule", err.Error())
	}
}

var (
	errVhostDeleted = errors.New("vhost deleted")
	errUserDeleted  = errors.New("user deleted")
)

// standing asks the Standing whether id's subject is still in good standing now.
func (s *Server) standing(id *auth.Identity) (reason string, revoked bool) {
	if st := s.opts.Standing; st != nil {
		return st.Revoked(id, s.now())
	}
	return "", false
}

// AddVhost creates a vhost's state; adding one that exists changes nothing.
func (s *Server) AddVhost(name string) { s.vhostFor(name) }

// DeleteVhost removes a vhost: its clients are disconnected (v5 DISCONNECT 0x98), its sessions
// and retained messages are removed, in memory and in the store. Wills of its sessions are not
// published: the tenant is gone. It reports whether the vhost existed.
func (s *Server) DeleteVhost(name string) bool {
	s.mu.Lock()
	v := s.vhosts[name]
	delete(s.vhosts, name)
	s.mu.Unlock()
	if v == nil {
		return false
	}
	v.mu.Lock()
	for c := range v.clients {
		c.close(errVhostDeleted, packet.AdministrativeAction)
	}
	for id, ss := range v.sessions {
		ss.mu.Lock()
		ss.will = nil
		ss.endLocked()
		ss.mu.Unlock()
		delete(v.sessions, id)
	}
	v.mu.Unlock()
	v.retained.Range(func(topic string, _ *Message) bool {
		v.retained.Delete(topic)
		if s.persist != nil {
			s.persist.st.DeleteRetained(name, topic)
		}
		return true
	})
	s.log.Info("vhost deleted", "vhost", name)
	return true
}

// DropSubject ends everything a deleted user owned: its live connections get DISCONNECT 0x98
// and their sessions end, in every vhost, with their wills (pending ones too) suppressed as
// "deleted_subject". A user created again under the same name is another subject (another ID)
// and inherits nothing.
func (s *Server) DropSubject(u auth.User) {
	owner := (&auth.Identity{User: u.Name, Issuer: auth.IssuerLocal, Subject: u.ID}).Owner()
	legacy := (&auth.Identity{User: u.Name, Issuer: auth.IssuerLocal}).Owner()
	for _, v := range s.vhostList() {
		var suppressed []*will
		v.mu.Lock()
		for id, ss := range v.sessions {
			ss.mu.Lock()
			if ss.identity == nil || (ss.identity.Owner() != owner && ss.identity.Owner() != legacy) {
				ss.mu.Unlock()
				continue
			}
			if c := ss.client; c != nil {
				ss.client = nil
				ss.online.Store(false)
				c.close(errUserDeleted, packet.AdministrativeAction)
			}
			if ss.will != nil {
				suppressed = append(suppressed, ss.will)
				ss.will = nil
			}
			if pw := ss.endLocked(); pw != nil {
				suppressed = append(suppressed, pw)
			}
			ss.mu.Unlock()
			delete(v.sessions, id)
		}
		v.mu.Unlock()
		for _, w := range suppressed {
			v.suppressWill(w, event.WillDeletedSubject, "the user was deleted")
		}
	}
	// Connections still in CONNECT, or whose session is another's: close them too.
	s.forEachClient(func(c *client) {
		if id := c.id(); id != nil && (id.Owner() == owner || id.Owner() == legacy) {
			c.close(errUserDeleted, packet.AdministrativeAction)
		}
	})
}

func (s *Server) forEachClient(fn func(*client)) {
	s.mu.Lock()
	cs := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		fn(c)
	}
}

// RecheckSubscriptions runs after every permission change: each session's subscriptions are
// checked again against the identity of its connection, and those no longer allowed are removed
// at once, so no further message is delivered on them.
func (s *Server) RecheckSubscriptions() {
	for _, v := range s.vhostList() {
		v.mu.Lock()
		for _, ss := range v.sessions {
			ss.mu.Lock()
			s.recheckSessionLocked(ss)
			ss.mu.Unlock()
		}
		v.mu.Unlock()
	}
}

// recheckSessionLocked judges one session's subscriptions again against its identity in force:
// those no longer allowed are removed, and the per-message read gate is set or cleared as the
// rules now require. ss.mu held.
func (s *Server) recheckSessionLocked(ss *session) {
	if ss.identity == nil {
		return
	}
	for k, sub := range ss.subs {
		filter := sub.Filter
		if sub.Group != "" {
			filter = topic.SharePrefix + sub.Group + "/" + sub.Filter
		}
		if isNoticeFilter(filter) {
			continue
		}
		if err := s.opts.Authorizer.CanSubscribe(ss.identity, ss.id, filter); err != nil {
			ss.removeSubscriptionLocked(k.group, k.filter) // and from the store: one record
			ss.vhost.log.Info("subscription removed: no longer permitted", "client_id", ss.id, "filter", filter, "rule", err.Error())
			continue
		}
		// A rule added or removed may change whether messages need a check each.
		if gated := ss.withGate(sub); (gated.Check == nil) != (sub.Check == nil) {
			ss.subscribeLocked(gated)
		}
	}
}

// authenticate runs the chain for a CONNECT and checks that the identity may use its vhost. The
// refusal's reason is logged and reported as an event; the client learns only the CONNACK code.
func (c *client) authenticate(cp *packet.Connect, clientID string) (*auth.Identity, *Vhost, packet.ReasonCode, string) {
	vname, user := c.srv.opts.DefaultVhost, cp.Username
	// vhost:username, split at the first colon; Alibaba's "Token|AK|instance" and
	// "Signature|AK|instance" name their vhost (the instance) themselves (tokens.md §4).
	if i := strings.IndexByte(cp.Username, ':'); i >= 0 && !strings.HasPrefix(cp.Username, "Token|") &&
		!strings.HasPrefix(cp.Username, "Signature|") {
		vname, user = cp.Username[:i], cp.Username[i+1:]
	}
	meta := c.connMeta()
	creds := &auth.Credentials{Username: user, Vhost: vname, Password: cp.Password, ClientID: clientID,
		Remote: remoteIP(c.conn), Listener: c.listener, PeerCN: meta.PeerCN, FromBrowser: meta.BrowserOrigin != "",
		AuthMethod: cp.Props.AuthMethod, AuthData: cp.Props.AuthData}
	ctx := newDeadlineCtx(connectTimeout)
	defer ctx.stop()
	id, err := c.srv.opts.Authenticator.Authenticate(ctx, creds)
	if err != nil {
		code := packet.BadUserNameOrPassword
		switch {
		case errors.Is(err, auth.ErrNotAuthorized):
			code = packet.NotAuthorized
		case errors.Is(err, auth.ErrRateLimited):
			code = packet.ConnectionRateExceeded // not checked: never answered as a bad password (3.1.1: 3)
		}
		return nil, nil, code, err.Error()
	}
	v := c.srv.Vhost(id.Vhost)
	switch {
	case v == nil:
		return nil, nil, packet.NotAuthorized, "vhost " + id.Vhost + " does not exist"
	case !c.srv.opts.Authorizer.Admits(id):
		return nil, nil, packet.NotAuthorized, "user " + id.User + " has no permissions on vhost " + id.Vhost
	}
	if cp.Will != nil {
		if err := c.srv.opts.Authorizer.CanPublish(id, clientID, cp.Will.Topic); err != nil {
			return nil, nil, packet.NotAuthorized, "will topic not permitted: " + err.Error()
		}
	}
	return id, v, packet.Success, ""
}

// remoteString is the client's address as logs, events and the API show it: what
// net.TCPAddr.String gives (IPv4 without the IPv6 mapping, IPv6 in brackets), in one allocation
// instead of three. It is made for every connection, before CONNECT (newClient).
func remoteString(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.Zone == "" && t.Port >= 0 && t.Port <= math.MaxUint16 {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return netip.AddrPortFrom(ip.Unmap(), uint16(t.Port)).String()
		}
	}
	if a == nil {
		return ""
	}
	return a.String()
}

// remoteIP is the client's address, for the loopback rule and login rate limiting.
func remoteIP(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}
