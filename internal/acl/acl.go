package acl

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// DefaultExchange is the exchange MQTT publishes to, in LavinMQ's model: permissions and topic
// permissions are checked against it.
const DefaultExchange = "mqtt.default"

// SessionPrefix starts the name of a client's session queue, "mqtt.<client_id>".
const SessionPrefix = "mqtt."

// Permission is a user's rights on one vhost, with RabbitMQ semantics: each field is a regex
// matched unanchored (regexp.MatchString) against a resource name; "" and "^$" match nothing,
// ".*" matches everything. MQTT never checks Configure; it is kept for the management API and
// definitions.
type Permission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// TopicPermission is RabbitMQ's topic authorization, applied to MQTT topics when Exchange is
// "mqtt.default" (entries for other exchanges are kept and listed, never checked). Write is
// matched against a PUBLISH topic, Read against a SUBSCRIBE filter, unanchored; "" and "^$"
// match nothing.
//
// The variables {username}, {vhost} and {client_id} are replaced, at check time, by the
// identity's user, its vhost and the client id, escaped with regexp.QuoteMeta. RabbitMQ inserts
// them raw; escaping is a deliberate difference, so that a client id such as ".*" or "a|b"
// cannot widen its owner's rights: "^devices/{client_id}/" allows exactly the client's own
// subtree whatever the client id contains.
type TopicPermission struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// userVhost keys every map of the snapshot.
type userVhost struct{ user, vhost string }

// permEntry is a compiled Permission.
type permEntry struct {
	p                         Permission
	configure, write, read    matcher
	writeDefault, readDefault bool // write and read matched against "mqtt.default", once
}

// topicEntry is a compiled TopicPermission.
type topicEntry struct {
	p           TopicPermission
	write, read rule
}

// state is an immutable snapshot of every rule. A change builds a new one.
type state struct {
	perms map[userVhost]*permEntry
	// topics holds every topic permission by (user, vhost), then by exchange. The inner maps
	// are immutable too: a change clones the one it touches.
	topics map[userVhost]map[string]*topicEntry
}

// Checker holds the permissions and answers the per-action checks. It is safe for concurrent
// use: checks read an immutable snapshot without locking; changes are serialized and replace
// the snapshot.
type Checker struct {
	enabled bool

	cur atomic.Pointer[state]
	gen atomic.Uint64

	mu        sync.Mutex // serializes changes; guards callbacks
	callbacks []func()

	cache exprCache // compiled expansions of templated topic-permission regexes
}

// NewChecker returns an empty Checker. permissionCheckEnabled is [mqtt]
// permission_check_enabled: whether publish and subscribe check the write and read permission
// regexes (LavinMQ's rules). Topic permissions and grants apply either way.
func NewChecker(permissionCheckEnabled bool) *Checker {
	c := &Checker{enabled: permissionCheckEnabled}
	c.cur.Store(&state{
		perms:  map[userVhost]*permEntry{},
		topics: map[userVhost]map[string]*topicEntry{},
	})
	c.cache.init(defaultCacheSize)
	return c
}

// CheckEnabled reports whether the permission check is enabled.
func (c *Checker) CheckEnabled() bool { return c.enabled }

// Generation increases on every change of the rules. A caller that re-checks live
// subscriptions can compare it with the generation it last checked against.
func (c *Checker) Generation() uint64 { return c.gen.Load() }

// OnChange registers fn to run after each change, once the new rules are in force and outside
// every lock of the Checker, in the goroutine that made the change. Changes made concurrently may
// run their callbacks concurrently; fn should read [Checker.Generation] and re-check rather than
// assume an order.
func (c *Checker) OnChange(fn func()) {
	c.mu.Lock()
	c.callbacks = append(c.callbacks, fn)
	c.mu.Unlock()
}

// commit installs next (when changed), bumps the generation and runs the callbacks. c.mu is
// held on entry and released here.
func (c *Checker) commit(next *state, changed bool) {
	if !changed {
		c.mu.Unlock()
		return
	}
	c.cur.Store(next)
	c.gen.Add(1)
	fns := slices.Clone(c.callbacks)
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// clone returns a shallow copy of s: new outer maps, shared entries and inner maps.
func (s *state) clone() *state {
	return &state{perms: maps.Clone(s.perms), topics: maps.Clone(s.topics)}
}

// ErrEmptyName is returned for a permission whose user, vhost or exchange is empty.
var ErrEmptyName = errors.New("acl: empty name")

// compilePermission checks and compiles p. The error names the field that failed.
func compilePermission(p Permission) (*permEntry, error) {
	if p.User == "" {
		return nil, fmt.Errorf("%w: user", ErrEmptyName)
	}
	if p.Vhost == "" {
		return nil, fmt.Errorf("%w: vhost", ErrEmptyName)
	}
	e := &permEntry{p: p}
	var err error
	if e.configure, err = compileMatcher(p.Configure); err != nil {
		return nil, fmt.Errorf("acl: permission %q on vhost %q: configure: %w", p.User, p.Vhost, err)
	}
	if e.write, err = compileMatcher(p.Write); err != nil {
		return nil, fmt.Errorf("acl: permission %q on vhost %q: write: %w", p.User, p.Vhost, err)
	}
	if e.read, err = compileMatcher(p.Read); err != nil {
		return nil, fmt.Errorf("acl: permission %q on vhost %q: read: %w", p.User, p.Vhost, err)
	}
	e.writeDefault = e.write.match(DefaultExchange)
	e.readDefault = e.read.match(DefaultExchange)
	return e, nil
}

// compileTopicPermission checks and compiles p. The error names the field that failed.
func compileTopicPermission(p TopicPermission) (*topicEntry, error) {
	switch {
	case p.User == "":
		return nil, fmt.Errorf("%w: user", ErrEmptyName)
	case p.Vhost == "":
		return nil, fmt.Errorf("%w: vhost", ErrEmptyName)
	case p.Exchange == "":
		return nil, fmt.Errorf("%w: exchange", ErrEmptyName)
	}
	e := &topicEntry{p: p}
	var err error
	if e.write, err = compileRule(p.Write); err != nil {
		return nil, fmt.Errorf("acl: topic permission %q on vhost %q, exchange %q: write: %w", p.User, p.Vhost, p.Exchange, err)
	}
	if e.read, err = compileRule(p.Read); err != nil {
		return nil, fmt.Errorf("acl: topic permission %q on vhost %q, exchange %q: read: %w", p.User, p.Vhost, p.Exchange, err)
	}
	return e, nil
}

// SetPermission creates or replaces the permission of (p.User, p.Vhost). The regexes are
// compiled here, once; on error (which names the bad field) nothing changes.
func (c *Checker) SetPermission(p Permission) error {
	return c.Apply([]Permission{p}, nil)
}

// SetTopicPermission creates or replaces the topic permission of (p.User, p.Vhost, p.Exchange).
// On error (which names the bad field) nothing changes.
func (c *Checker) SetTopicPermission(p TopicPermission) error {
	return c.Apply(nil, []TopicPermission{p})
}

// Apply sets many permissions and topic permissions as one change: all or none (the first bad
// entry refuses the lot), one Generation step, one round of OnChange callbacks. It is the
// form for loading from the store at start and for importing definitions; setting them one by
// one would copy the snapshot once per entry.
func (c *Checker) Apply(perms []Permission, topicPerms []TopicPermission) error {
	pe := make([]*permEntry, len(perms))
	for i, p := range perms {
		e, err := compilePermission(p)
		if err != nil {
			return err
		}
		pe[i] = e
	}
	te := make([]*topicEntry, len(topicPerms))
	for i, p := range topicPerms {
		e, err := compileTopicPermission(p)
		if err != nil {
			return err
		}
		te[i] = e
	}
	if len(pe) == 0 && len(te) == 0 {
		return nil
	}
	c.mu.Lock()
	next := c.cur.Load().clone()
	for _, e := range pe {
		next.perms[userVhost{e.p.User, e.p.Vhost}] = e
	}
	cloned := map[userVhost]bool{}
	for _, e := range te {
		k := userVhost{e.p.User, e.p.Vhost}
		if !cloned[k] {
			next.topics[k] = maps.Clone(next.topics[k])
			if next.topics[k] == nil {
				next.topics[k] = map[string]*topicEntry{}
			}
			cloned[k] = true
		}
		next.topics[k][e.p.Exchange] = e
	}
	c.commit(next, true)
	return nil
}

// DeletePermission removes the permission of (user, vhost) and reports whether there was one.
// The user's topic permissions on the vhost are kept (RabbitMQ keeps them too); without a
// permission the user cannot connect to the vhost anyway.
func (c *Checker) DeletePermission(user, vhost string) bool {
	c.mu.Lock()
	cur := c.cur.Load()
	k := userVhost{user, vhost}
	if _, ok := cur.perms[k]; !ok {
		c.mu.Unlock()
		return false
	}
	next := cur.clone()
	delete(next.perms, k)
	c.commit(next, true)
	return true
}

// DeleteTopicPermission removes the user's topic permission for exchange on vhost, or, when
// exchange is "", every topic permission of the user on the vhost. It reports whether anything
// was removed.
func (c *Checker) DeleteTopicPermission(user, vhost, exchange string) bool {
	c.mu.Lock()
	cur := c.cur.Load()
	k := userVhost{user, vhost}
	byEx, ok := cur.topics[k]
	if !ok {
		c.mu.Unlock()
		return false
	}
	next := cur.clone()
	if exchange == "" {
		delete(next.topics, k)
	} else {
		if _, ok := byEx[exchange]; !ok {
			c.mu.Unlock()
			return false
		}
		inner := maps.Clone(byEx)
		delete(inner, exchange)
		if len(inner) == 0 {
			delete(next.topics, k)
		} else {
			next.topics[k] = inner
		}
	}
	c.commit(next, true)
	return true
}

// DeleteUser removes every permission and topic permission of user, on every vhost.
func (c *Checker) DeleteUser(user string) {
	c.deleteWhere(func(k userVhost) bool { return k.user == user })
}

// DeleteVhost removes every permission and topic permission on vhost, of every user.
func (c *Checker) DeleteVhost(vhost string) {
	c.deleteWhere(func(k userVhost) bool { return k.vhost == vhost })
}

func (c *Checker) deleteWhere(drop func(userVhost) bool) {
	c.mu.Lock()
	next := c.cur.Load().clone()
	n := len(next.perms) + len(next.topics)
	maps.DeleteFunc(next.perms, func(k userVhost, _ *permEntry) bool { return drop(k) })
	maps.DeleteFunc(next.topics, func(k userVhost, _ map[string]*topicEntry) bool { return drop(k) })
	c.commit(next, len(next.perms)+len(next.topics) != n)
}

// Permission returns the permission of (user, vhost).
func (c *Checker) Permission(user, vhost string) (Permission, bool) {
	e, ok := c.cur.Load().perms[userVhost{user, vhost}]
	if !ok {
		return Permission{}, false
	}
	return e.p, true
}

// Permissions returns every permission, sorted by vhost, then user.
func (c *Checker) Permissions() []Permission {
	s := c.cur.Load()
	out := make([]Permission, 0, len(s.perms))
	for _, e := range s.perms {
		out = append(out, e.p)
	}
	slices.SortFunc(out, func(a, b Permission) int {
		return cmp.Or(cmp.Compare(a.Vhost, b.Vhost), cmp.Compare(a.User, b.User))
	})
	return out
}

// TopicPermissions returns every topic permission, sorted by vhost, user, then exchange.
func (c *Checker) TopicPermissions() []TopicPermission {
	s := c.cur.Load()
	var out []TopicPermission
	for _, byEx := range s.topics {
		for _, e := range byEx {
			out = append(out, e.p)
		}
	}
	slices.SortFunc(out, func(a, b TopicPermission) int {
		return cmp.Or(cmp.Compare(a.Vhost, b.Vhost), cmp.Compare(a.User, b.User), cmp.Compare(a.Exchange, b.Exchange))
	})
	return out
}

// Admits reports whether the identity may use its vhost: with OAuth2 scopes (GrantsOAuth), when
// they give any permission there; otherwise when the user has a permission entry on it
// (HasAccess). Whether the vhost exists is the caller's check.
func (c *Checker) Admits(id *auth.Identity) bool {
	if id.GrantsSource == auth.GrantsOAuth {
		return id.Scoped != nil
	}
	return c.HasAccess(id.User, id.Vhost)
}

// HasAccess reports whether user may connect to vhost: a permission entry exists for the pair,
// whatever its regexes (RabbitMQ and LavinMQ). Whether the vhost exists is the caller's check.
func (c *Checker) HasAccess(user, vhost string) bool {
	_, ok := c.cur.Load().perms[userVhost{user, vhost}]
	return ok
}
