package acl

import (
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// Action is what a client asks to do.
type Action uint8

const (
	Publish   Action = iota + 1 // PUBLISH, and a will when it is accepted at CONNECT and when it is sent
	Subscribe                   // one filter of a SUBSCRIBE
)

func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	}
	return "unknown"
}

// The rules a Denial names. They are fixed strings, fit for a log key or a metric label.
const (
	RuleWrite        = "write on mqtt.default"     // permission: write regex vs "mqtt.default"
	RuleRead         = "read on mqtt.default"      // permission: read regex vs "mqtt.default"
	RuleWriteSession = "write on mqtt.<client_id>" // permission: write regex vs the session queue
	RuleTopicWrite   = "topic write"               // topic permission: write regex vs the topic
	RuleTopicRead    = "topic read"                // topic permission: read regex vs the filter
	RuleGrant        = "grant"                     // no credential grant allows it
	RuleVhostAccess  = "access to the vhost"       // no permission entry on the vhost at all
)

// Denial is the error CanPublish and CanSubscribe return when an action is refused: which
// action, and which rule refused it. The values are shared and must not be modified.
type Denial struct {
	Action Action
	Rule   string // one of the Rule constants
}

func (d *Denial) Error() string { return "acl: " + d.Action.String() + " refused by " + d.Rule }

// The denials, allocated once so that a refusal allocates nothing either.
var (
	denyWrite        = &Denial{Publish, RuleWrite}
	denyPublishVhost = &Denial{Publish, RuleVhostAccess}
	denySubVhost     = &Denial{Subscribe, RuleVhostAccess}
	denyTopicWrite   = &Denial{Publish, RuleTopicWrite}
	denyPublishGrant = &Denial{Publish, RuleGrant}
	denyRead         = &Denial{Subscribe, RuleRead}
	denyWriteSession = &Denial{Subscribe, RuleWriteSession}
	denyTopicRead    = &Denial{Subscribe, RuleTopicRead}
	denySubGrant     = &Denial{Subscribe, RuleGrant}
)

// CanPublish reports whether the identity may publish to topicName (a valid topic name) from
// the client clientID: nil when allowed, or a *Denial. It checks, in order:
//
//   - with the permission check enabled, the write regex of (id.User, id.Vhost) against
//     "mqtt.default" (LavinMQ); no permission entry denies;
//   - the user's topic permission on (id.Vhost, "mqtt.default"), if any: its write regex,
//     expanded, against the topic;
//   - when id.Grants is not nil, a "write" grant whose pattern matches the topic.
//
// Wills use it too, at CONNECT and when sent. With plain (non-templated) rules it allocates
// nothing.
//
// For an OAuth2 identity (GrantsSource auth.GrantsOAuth) the stored permissions of id.User are
// never consulted: its scopes (id.Scoped) take their place, see canPublishScoped.
func (c *Checker) CanPublish(id *auth.Identity, clientID, topicName string) error {
	if id.GrantsSource == auth.GrantsOAuth {
		return c.canPublishScoped(id, topicName)
	}
	s := c.cur.Load()
	k := userVhost{id.User, id.Vhost}
	p := s.perms[k]
	if p == nil {
		// Access to the vhost, required at CONNECT, is required at every action too: a
		// permission deleted while the client is connected takes effect at once.
		return denyPublishVhost
	}
	if c.enabled && !p.writeDefault {
		return denyWrite
	}
	if t := s.topics[k][DefaultExchange]; t != nil && !c.matchRule(&t.write, id, clientID, topicName) {
		return denyTopicWrite
	}
	if id.Grants != nil && !grantMatches(id.Grants, topicName) {
		return denyPublishGrant
	}
	return nil
}

// CanSubscribe reports whether the identity may subscribe to filter (a valid topic filter)
// from the client clientID: nil when allowed, or a *Denial. A shared subscription,
// "$share/{group}/{filter}", is checked on its filter. It checks, in order:
//
//   - with the permission check enabled, the read regex of (id.User, id.Vhost) against
//     "mqtt.default" and its write regex against the session queue "mqtt.<client_id>"
//     (LavinMQ); no permission entry denies;
//   - the user's topic permission on (id.Vhost, "mqtt.default"), if any: its read regex,
//     expanded, against the filter;
//   - when id.Grants is not nil, a "read" grant whose pattern covers the filter: every topic the
//     filter matches, the pattern matches too.
//
// For an OAuth2 identity the scopes take the place of the stored permissions, as in CanPublish.
func (c *Checker) CanSubscribe(id *auth.Identity, clientID, filter string) error {
	if _, f, shared, err := topic.ParseShared(filter); shared && err == nil {
		filter = f
	}
	if id.GrantsSource == auth.GrantsOAuth {
		return c.canSubscribeScoped(id, clientID, filter)
	}
	s := c.cur.Load()
	k := userVhost{id.User, id.Vhost}
	p := s.perms[k]
	if p == nil {
		return denySubVhost // see CanPublish
	}
	if c.enabled {
		if !p.readDefault {
			return denyRead
		}
		if !p.matchSession(clientID) {
			return denyWriteSession
		}
	}
	if t := s.topics[k][DefaultExchange]; t != nil && !c.matchRule(&t.read, id, clientID, filter) {
		return denyTopicRead
	}
	if id.Grants != nil && !grantCovers(id.Grants, filter) {
		return denySubGrant
	}
	return nil
}

// canPublishScoped is CanPublish for an OAuth2 identity. id.Scoped nil means the scopes give
// nothing on the vhost: denied, as a missing permission entry is. Otherwise, with the
// permission check enabled, Scoped.Write must match "mqtt.default"; TopicWrite, when not "",
// must match the topic whether or not the check is enabled (as stored topic permissions); and
// credential grants narrow as for anyone. The regexes are compiled once and cached: a check
// allocates nothing.
func (c *Checker) canPublishScoped(id *auth.Identity, topicName string) error {
	sp := id.Scoped
	if sp == nil {
		return denyPublishVhost
	}
	if c.enabled && !c.matchScoped(sp.Write, DefaultExchange) {
		return denyWrite
	}
	if sp.TopicWrite != "" && !c.matchScoped(sp.TopicWrite, topicName) {
		return denyTopicWrite
	}
	if id.Grants != nil && !grantMatches(id.Grants, topicName) {
		return denyPublishGrant
	}
	return nil
}

// canSubscribeScoped is CanSubscribe for an OAuth2 identity: with the check enabled,
// Scoped.Read against "mqtt.default" and Scoped.Write against "mqtt.<client_id>" (LavinMQ);
// TopicRead, when not "", against the filter; then credential grants.
func (c *Checker) canSubscribeScoped(id *auth.Identity, clientID, filter string) error {
	sp := id.Scoped
	if sp == nil {
		return denySubVhost
	}
	if c.enabled {
		if !c.matchScoped(sp.Read, DefaultExchange) {
			return denyRead
		}
		if !c.matchScopedSession(sp.Write, clientID) {
			return denyWriteSession
		}
	}
	if sp.TopicRead != "" && !c.matchScoped(sp.TopicRead, filter) {
		return denyTopicRead
	}
	if id.Grants != nil && !grantCovers(id.Grants, filter) {
		return denySubGrant
	}
	return nil
}

// matchScoped matches a scope-derived regex against s, unanchored as RabbitMQ matches stored
// permissions (the oauth provider anchors its regexes itself), with the same special cases:
// "" and "^$" match nothing, ".*" everything. A regex that does not compile matches nothing.
func (c *Checker) matchScoped(src, s string) bool {
	switch src {
	case "", "^$":
		return false
	case ".*", "^.*", ".*$":
		return true
	}
	re := c.cache.getString(src)
	return re != nil && re.MatchString(s)
}

// matchScopedSession matches a scope-derived write regex against the session queue
// "mqtt.<client_id>", building the name only when a real regexp must run.
func (c *Checker) matchScopedSession(src, clientID string) bool {
	switch src {
	case "", "^$":
		return false
	case ".*", "^.*", ".*$":
		return true
	}
	re := c.cache.getString(src)
	return re != nil && re.MatchString(SessionPrefix+clientID)
}

// matchSession matches the write regex against the session queue "mqtt.<client_id>". The
// name is built only when a real regexp must run.
func (p *permEntry) matchSession(clientID string) bool {
	if p.write.kind != matchRegexp {
		return p.write.kind == matchAlways
	}
	return p.write.re.MatchString(SessionPrefix + clientID)
}

// matchRule matches a topic-permission rule against s, expanding a template with the
// identity's user and vhost and the client id. An expansion that does not compile denies.
func (c *Checker) matchRule(r *rule, id *auth.Identity, clientID, s string) bool {
	if r.parts == nil {
		return r.match(s)
	}
	if !r.substitutable(id.User, clientID) {
		return false
	}
	var buf [256]byte
	re := c.cache.get(r.expand(buf[:0], id.User, id.Vhost, clientID))
	return re != nil && re.MatchString(s)
}

// grantMatches reports whether a write grant's pattern matches the topic name.
func grantMatches(grants []auth.Grant, name string) bool {
	for i := range grants {
		if grants[i].Action == "write" && topic.Match(grants[i].Pattern, name) {
			return true
		}
	}
	return false
}

// grantCovers reports whether a read grant's pattern covers the filter.
func grantCovers(grants []auth.Grant, filter string) bool {
	for i := range grants {
		if grants[i].Action == "read" && coversFilter(grants[i].Pattern, filter) {
			return true
		}
	}
	return false
}

// coversFilter reports whether every topic name that filter matches is matched by pattern too.
// Both are valid topic filters. Level by level: '#' in the pattern covers the rest, the parent
// level included; '+' in the pattern covers one literal or '+' level, not '#'; a literal covers
// only the same literal. A pattern starting with a wildcard matches no '$' topic
// [MQTT-4.7.2-1], so it covers no filter whose first level is a literal starting with '$';
// a filter starting with a wildcard matches no '$' topic either, so that case needs no rule.
// It does not allocate.
func coversFilter(pattern, filter string) bool {
	if pattern == "" || filter == "" {
		return false
	}
	if (pattern[0] == '+' || pattern[0] == '#') && filter[0] == '$' {
		return false // [MQTT-4.7.2-1]
	}
	for {
		pe := indexSlash(pattern)
		pl := pattern[:pe]
		if pl == "#" {
			return true
		}
		fe := indexSlash(filter)
		fl := filter[:fe]
		switch {
		case fl == "#":
			return false // the filter takes every level below; only a pattern '#' covers that
		case pl == "+":
		case pl != fl:
			return false // a literal covers only itself; not '+', which takes any level
		}
		pDone, fDone := pe == len(pattern), fe == len(filter)
		switch {
		case pDone && fDone:
			return true
		case pDone:
			return false // the filter matches deeper topics than the pattern
		case fDone:
			// The filter stops here; a pattern "…/#" matches this level too.
			return pattern[pe+1:] == "#"
		}
		pattern, filter = pattern[pe+1:], filter[fe+1:]
	}
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}
