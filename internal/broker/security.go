package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/definitions"
	"github.com/turnstilemq/turnstile/internal/listener"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// security is who may log in and what they may do: the local users, the authentication chain
// and the permission checker. The vhosts that exist are the Server's. Definition changes go
// through the Server's methods below, are stored as one definitions document, and apply to live
// connections at once.
type security struct {
	users   *auth.Users
	checker *acl.Checker
	chain   *auth.Chain

	denied  [acl.Subscribe + 1]atomic.Uint64 // indexed by acl.Action
	logMu   sync.Mutex
	lastLog time.Time
}

func newSecurity(cfg *config.Config) (*security, error) {
	sec := &security{users: auth.NewUsers(), checker: acl.NewChecker(cfg.MQTT.PermissionCheckEnabled)}
	loopbackOnly := ""
	if cfg.Main.DefaultUserOnlyLoopback {
		loopbackOnly = cfg.Main.DefaultUser
	}
	var providers []auth.Provider
	if cfg.MQTT.TLSCertLogin {
		providers = append(providers, &auth.Cert{Users: sec.users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	for _, name := range strings.Split(cfg.Main.AuthBackends, ",") {
		switch strings.TrimSpace(name) {
		case "local":
			local, err := auth.NewLocal(sec.users, auth.LocalOptions{DefaultUserOnlyLoopback: loopbackOnly})
			if err != nil {
				return nil, err
			}
			providers = append(providers, local)
		default:
			return nil, fmt.Errorf("[main] auth_backends: unknown provider %q", name)
		}
	}
	if cfg.MQTT.AllowAnonymous {
		providers = append(providers, &auth.Anonymous{User: cfg.MQTT.AnonymousUser, Users: sec.users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	sec.chain = auth.NewChain(providers...)
	return sec, nil
}

// deny counts an authorization denial and logs it, at most once a second per server.
func (s *Server) deny(c *client, action acl.Action, what string, err error) {
	s.sec.denied[action].Add(1)
	s.sec.logMu.Lock()
	now := time.Now()
	logIt := now.Sub(s.sec.lastLog) >= time.Second
	if logIt {
		s.sec.lastLog = now
	}
	s.sec.logMu.Unlock()
	if logIt {
		c.logf(slog.LevelWarn, "not authorized", "action", actionName(action), "target", what, "rule", err.Error()) // warn
	}
}

func actionName(a acl.Action) string {
	if a == acl.Publish {
		return "publish"
	}
	return "subscribe"
}

// Denied returns the authorization denials counted so far: publishes (incl. wills), subscribes.
func (s *Server) Denied() (publish, subscribe uint64) {
	return s.sec.denied[acl.Publish].Load(), s.sec.denied[acl.Subscribe].Load()
}

// loadDefinitions sets up users, vhosts and permissions at start: the stored definitions (or,
// on first start, vhost "/" and the default user with full permissions there), then the
// configured definitions_file on top, then the anonymous user when anonymous access is on.
func (s *Server) loadDefinitions() error {
	var d *definitions.Definitions
	if s.persist != nil {
		doc, err := s.persist.st.LoadDefinitions()
		switch {
		case err == nil:
			if d, err = definitions.Parse(bytes.NewReader(doc), 0); err != nil {
				return fmt.Errorf("stored definitions: %w", err)
			}
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("stored definitions: %w", err)
		}
	}
	if d == nil {
		var err error
		if d, err = s.bootstrapDefinitions(); err != nil {
			return err
		}
	}
	if err := s.applyDefinitions(d); err != nil {
		return err
	}
	if f := s.cfg.Main.DefinitionsFile; f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("[main] definitions_file: %w", err)
		}
		fd, err := definitions.Parse(fh, 0)
		fh.Close()
		if err == nil {
			err = fd.Validate()
		}
		if err != nil {
			return fmt.Errorf("[main] definitions_file %s: %w", f, err)
		}
		for _, w := range fd.Warnings() {
			s.log.Warn("definitions_file", "file", f, "warning", w)
		}
		if err := s.applyDefinitions(fd); err != nil {
			return fmt.Errorf("[main] definitions_file %s: %w", f, err)
		}
		s.log.Info("definitions imported", "file", f, "users", len(fd.Users), "vhosts", len(fd.Vhosts),
			"permissions", len(fd.Permissions), "topic_permissions", len(fd.TopicPermissions))
	}
	if m := &s.cfg.MQTT; m.AllowAnonymous {
		// Anonymous access was asked for explicitly: the anonymous user exists (it cannot log in
		// with a password) and, unless definitions say otherwise, has full permissions on the
		// default vhost, as mosquitto's allow_anonymous does.
		if _, ok := s.sec.users.Get(m.AnonymousUser); !ok {
			s.sec.users.Put(auth.User{Name: m.AnonymousUser})
			if _, ok := s.sec.checker.Permission(m.AnonymousUser, m.DefaultVhost); !ok && s.Vhost(m.DefaultVhost) != nil {
				s.sec.checker.SetPermission(acl.Permission{User: m.AnonymousUser, Vhost: m.DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"})
			}
		}
	}
	s.saveDefinitions()
	return nil
}

func (s *Server) bootstrapDefinitions() (*definitions.Definitions, error) {
	d := &definitions.Definitions{Vhosts: []definitions.Vhost{{Name: DefaultVhost}}}
	if dv := s.cfg.MQTT.DefaultVhost; dv != DefaultVhost {
		d.Vhosts = append(d.Vhosts, definitions.Vhost{Name: dv})
	}
	m := &s.cfg.Main
	if m.DefaultUser != "" && m.DefaultPassword != "" {
		u, err := auth.DefaultUser(m.DefaultUser, m.DefaultPassword)
		if err != nil {
			return nil, fmt.Errorf("[main] default_password: %w", err)
		}
		d.Users = append(d.Users, definitions.User{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashAlgorithm, Tags: []string{string(auth.TagAdministrator)}})
		d.Permissions = append(d.Permissions, definitions.Permission{User: u.Name, Vhost: DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"})
	}
	return d, nil
}

// applyDefinitions adds or replaces the vhosts, users and permissions of d.
func (s *Server) applyDefinitions(d *definitions.Definitions) error {
	users := make([]auth.User, 0, len(d.Users))
	for i, u := range d.Users {
		alg := u.HashingAlgorithm
		if alg == definitions.DefaultImportAlgorithm && strings.HasPrefix(u.PasswordHash, "$") {
			// The file named no algorithm (Parse filled in RabbitMQ's MD5 default), but a "$"
			// string is a bcrypt or argon2id hash, never base64: let ImportHash recognise it.
			alg = ""
		}
		alg, err := auth.ImportHash(alg, u.PasswordHash, definitions.DefaultImportAlgorithm)
		if err != nil {
			return fmt.Errorf("users[%d] (%s): %w", i, u.Name, err)
		}
		tags := make([]auth.Tag, len(u.Tags))
		for j, t := range u.Tags {
			tags[j] = auth.Tag(t)
		}
		users = append(users, auth.User{Name: u.Name, HashAlgorithm: alg, PasswordHash: u.PasswordHash, Tags: tags})
	}
	perms := make([]acl.Permission, len(d.Permissions))
	for i, p := range d.Permissions {
		perms[i] = acl.Permission(p)
	}
	tperms := make([]acl.TopicPermission, len(d.TopicPermissions))
	for i, p := range d.TopicPermissions {
		tperms[i] = acl.TopicPermission(p)
	}
	for _, v := range d.Vhosts {
		s.vhostFor(v.Name)
	}
	for _, u := range users {
		s.sec.users.Put(u)
	}
	return s.sec.checker.Apply(perms, tperms)
}

// ExportDefinitions returns the users, vhosts, permissions and topic permissions.
func (s *Server) ExportDefinitions() *definitions.Definitions {
	d := &definitions.Definitions{}
	for _, u := range s.sec.users.List() {
		tags := make([]string, len(u.Tags))
		for i, t := range u.Tags {
			tags[i] = string(t)
		}
		d.Users = append(d.Users, definitions.User{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashAlgorithm, Tags: tags})
	}
	for _, name := range s.VhostNames() {
		d.Vhosts = append(d.Vhosts, definitions.Vhost{Name: name})
	}
	for _, p := range s.sec.checker.Permissions() {
		d.Permissions = append(d.Permissions, definitions.Permission(p))
	}
	for _, p := range s.sec.checker.TopicPermissions() {
		d.TopicPermissions = append(d.TopicPermissions, definitions.TopicPermission(p))
	}
	return d
}

// saveDefinitions stores the current definitions and waits until they are durable.
func (s *Server) saveDefinitions() {
	if s.persist == nil {
		return
	}
	var buf bytes.Buffer
	if err := s.ExportDefinitions().WriteJSON(&buf); err != nil {
		s.log.Error("encoding definitions failed", "error", err.Error())
		return
	}
	t := s.persist.st.PutDefinitions(buf.Bytes())
	done := make(chan struct{})
	s.persist.st.Notify(t, func() { close(done) })
	<-done
}

// VhostNames lists the vhosts, sorted.
func (s *Server) VhostNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.vhosts))
	for n := range s.vhosts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ImportDefinitions validates d and adds or replaces what it defines.
func (s *Server) ImportDefinitions(d *definitions.Definitions) error {
	if err := d.Validate(); err != nil {
		return err
	}
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if err := s.applyDefinitions(d); err != nil {
		return err
	}
	s.saveDefinitions()
	return nil
}

// AddVhost creates a vhost; adding one that exists changes nothing.
func (s *Server) AddVhost(name string) error {
	if name == "" {
		return errors.New("vhost name must not be empty")
	}
	s.defMu.Lock()
	defer s.defMu.Unlock()
	s.vhostFor(name)
	s.saveDefinitions()
	return nil
}

// DeleteVhost removes a vhost: its clients are disconnected (v5 DISCONNECT 0x98), its sessions
// and retained messages are removed, in memory and in the store, and so are its permissions.
func (s *Server) DeleteVhost(name string) bool {
	s.defMu.Lock()
	defer s.defMu.Unlock()
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
	s.sec.checker.DeleteVhost(name)
	s.saveDefinitions()
	s.log.Info("vhost deleted", "vhost", name)
	return true
}

// PutUser adds or replaces a local user.
func (s *Server) PutUser(u auth.User) {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	s.sec.users.Put(u)
	s.saveDefinitions()
}

// User returns a local user.
func (s *Server) User(name string) (auth.User, bool) { return s.sec.users.Get(name) }

// DeleteUser removes a local user with their permissions and disconnects their clients (v5
// DISCONNECT 0x98).
func (s *Server) DeleteUser(name string) bool {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if !s.sec.users.Delete(name) {
		return false
	}
	s.sec.checker.DeleteUser(name)
	s.forEachClient(func(c *client) {
		if c.identity != nil && c.identity.User == name {
			c.close(errUserDeleted, packet.AdministrativeAction)
		}
	})
	s.saveDefinitions()
	return true
}

// SetPermission sets a user's permissions on a vhost.
func (s *Server) SetPermission(p acl.Permission) error {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if err := s.sec.checker.SetPermission(p); err != nil {
		return err
	}
	s.saveDefinitions()
	return nil
}

// DeletePermission removes a user's permissions on a vhost.
func (s *Server) DeletePermission(user, vhost string) bool {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	ok := s.sec.checker.DeletePermission(user, vhost)
	s.saveDefinitions()
	return ok
}

// SetTopicPermission sets a user's topic permissions on a vhost.
func (s *Server) SetTopicPermission(p acl.TopicPermission) error {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if err := s.sec.checker.SetTopicPermission(p); err != nil {
		return err
	}
	s.saveDefinitions()
	return nil
}

// DeleteTopicPermission removes a user's topic permissions on a vhost.
func (s *Server) DeleteTopicPermission(user, vhost, exchange string) bool {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	ok := s.sec.checker.DeleteTopicPermission(user, vhost, exchange)
	s.saveDefinitions()
	return ok
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

// recheckSubscriptions runs after every permission change: each session's subscriptions are
// checked again against the identity of its connection, and those no longer allowed are removed
// at once, so no further message is delivered on them.
func (s *Server) recheckSubscriptions() {
	s.mu.Lock()
	vs := make([]*Vhost, 0, len(s.vhosts))
	for _, v := range s.vhosts {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	for _, v := range vs {
		v.mu.Lock()
		for _, ss := range v.sessions {
			ss.mu.Lock()
			removed := 0
			for k, sub := range ss.subs {
				if ss.identity == nil {
					break
				}
				filter := sub.Filter
				if sub.Group != "" {
					filter = "$share/" + sub.Group + "/" + sub.Filter
				}
				if err := s.sec.checker.CanSubscribe(ss.identity, ss.id, filter); err != nil {
					ss.unsubscribeLocked(k.group, k.filter)
					removed++
					v.log.Info("subscription removed: no longer permitted", "client_id", ss.id, "filter", filter, "rule", err.Error())
				}
			}
			if removed > 0 && ss.persistent() {
				ss.saveLocked()
			}
			ss.mu.Unlock()
		}
		v.mu.Unlock()
	}
}

var (
	errVhostDeleted = errors.New("vhost deleted")
	errUserDeleted  = errors.New("user deleted")
)

// authenticate runs the chain for a CONNECT and checks that the identity may use the vhost. The
// refusal's reason is logged; the client learns only the CONNACK code.
func (c *client) authenticate(cp *packet.Connect, clientID string) (*auth.Identity, *Vhost, packet.ReasonCode, string) {
	sec := c.srv.sec
	vname, user := c.srv.cfg.MQTT.DefaultVhost, cp.Username
	if i := strings.IndexByte(cp.Username, ':'); i >= 0 { // vhost:username, split at the first colon
		vname, user = cp.Username[:i], cp.Username[i+1:]
	}
	creds := &auth.Credentials{Username: user, Vhost: vname, Password: cp.Password, ClientID: clientID,
		Remote: remoteIP(c.conn), Listener: c.listener, PeerCN: peerCN(c.conn),
		FromBrowser: listener.WebSocketOrigin(c.conn) != ""}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	id, err := sec.chain.Authenticate(ctx, creds)
	if err != nil {
		code := packet.BadUserNameOrPassword
		if errors.Is(err, auth.ErrNotAuthorized) {
			code = packet.NotAuthorized
		}
		return nil, nil, code, err.Error()
	}
	v := c.srv.Vhost(vname)
	switch {
	case v == nil:
		return nil, nil, packet.NotAuthorized, "vhost " + vname + " does not exist"
	case !sec.checker.HasAccess(id.User, vname):
		return nil, nil, packet.NotAuthorized, "user " + id.User + " has no permissions on vhost " + vname
	}
	id.Vhost = vname
	if cp.Will != nil {
		if err := sec.checker.CanPublish(id, clientID, cp.Will.Topic); err != nil {
			return nil, nil, packet.NotAuthorized, "will topic not permitted: " + err.Error()
		}
	}
	return id, v, packet.Success, ""
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

// peerCN is the verified client certificate's Common Name on a TLS connection, else "".
func peerCN(c net.Conn) string { return listener.PeerCN(c) }
