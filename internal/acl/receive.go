package acl

import (
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// denyReceive is CanReceive's denial: the read rule does not match the topic of a message.
var denyReceive = &Denial{Subscribe, RuleTopicRead}

// ReceiveCovered reports whether every message a subscription to filter can receive is
// provably inside the identity's topic read rule, so that no message needs checking when it is
// delivered. It is true when no topic-level read rule applies (no topic permission on
// "mqtt.default", a rule matching everything, or an OAuth2 identity without a topic scope), and
// for a filter without wildcards (CanSubscribe matched the rule against exactly the topic).
// Otherwise (a wildcard filter under a real rule, such as "sensors/+/#" under
// "^sensors/[^b/][^/]*/") each delivered topic must pass CanReceive: a regex that matches the
// filter's text says nothing about the topics the filter matches.
//
// Token grants need no check per message: a subscription is accepted only when a read grant
// covers the filter (a subset test).
func (c *Checker) ReceiveCovered(id *auth.Identity, filter string) bool {
	if _, f, shared, err := topic.ParseShared(filter); shared && err == nil {
		filter = f
	}
	if !strings.ContainsAny(filter, "+#") {
		return true
	}
	if id.GrantsSource == auth.GrantsOAuth {
		sp := id.Scoped
		return sp == nil || sp.TopicRead == "" || isMatchAll(sp.TopicRead)
	}
	t := c.cur.Load().topics[userVhost{id.User, id.Vhost}][DefaultExchange]
	return t == nil || (t.read.parts == nil && t.read.kind == matchAlways)
}

// CanReceive reports whether a message on topicName may be delivered to the identity's
// subscription: its topic read rule (the topic permission's read regex with {username},
// {vhost} and {client_id} expanded and escaped, or an OAuth2 identity's TopicRead) must match
// the topic itself. Only the topic rule is judged here; access to the vhost and the permission
// check were judged at SUBSCRIBE and are re-judged when permissions change.
func (c *Checker) CanReceive(id *auth.Identity, clientID, topicName string) error {
	if id.GrantsSource == auth.GrantsOAuth {
		if sp := id.Scoped; sp != nil && sp.TopicRead != "" && !c.matchScoped(sp.TopicRead, topicName) {
			return denyReceive
		}
		return nil
	}
	if t := c.cur.Load().topics[userVhost{id.User, id.Vhost}][DefaultExchange]; t != nil && !c.matchRule(&t.read, id, clientID, topicName) {
		return denyReceive
	}
	return nil
}

func isMatchAll(src string) bool { return src == ".*" || src == "^.*" || src == ".*$" || src == "^.*$" }

// CanRead reports whether the identity may read messages on topicName in its vhost, outside
// any connection (the management API showing a retained message): access to the vhost, read
// on "mqtt.default" when the permission check is on, and the topic read rule, judged with no
// client id (a rule naming {client_id} grants nothing here).
func (c *Checker) CanRead(id *auth.Identity, topicName string) error {
	if id.GrantsSource == auth.GrantsOAuth {
		if id.Scoped == nil {
			return denySubVhost
		}
		return c.CanReceive(id, "", topicName)
	}
	p := c.cur.Load().perms[userVhost{id.User, id.Vhost}]
	switch {
	case p == nil:
		return denySubVhost
	case c.enabled && !p.readDefault:
		return denyRead
	}
	return c.CanReceive(id, "", topicName)
}
