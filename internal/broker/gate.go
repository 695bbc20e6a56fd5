package broker

import (
	"sync"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// gateMemo bounds the topics a session's read gate remembers; when full it starts again.
const gateMemo = 1024

// readGate is a session's read permission per message: for a subscription whose filter is not
// provably inside the subscriber's topic read rule (Authorizer.ReceiveCovered), each delivered
// topic must pass Authorizer.CanReceive. Answers are remembered per topic until the session's
// identity or the policy (Authorizer.Generation) changes, so a steady flow costs one map lookup.
// Subscriptions that need no check carry no gate and cost nothing.
type readGate struct {
	s    *session
	mu   sync.Mutex
	gen  uint64
	id   *auth.Identity
	memo map[string]bool
}

// allow reports whether a message on topicName may be delivered to the session. It runs on
// the publisher's goroutine (and for retained messages on the subscriber's), holding no broker
// lock but its own.
func (g *readGate) allow(topicName string) bool {
	authz := g.s.vhost.srv.opts.Authorizer
	id := g.s.idNow.Load()
	if id == nil {
		return false
	}
	gen := authz.Generation()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.memo == nil || gen != g.gen || id != g.id {
		g.memo = make(map[string]bool)
		g.gen, g.id = gen, id
	}
	if ok, hit := g.memo[topicName]; hit {
		return ok
	}
	ok := authz.CanReceive(id, g.s.id, topicName) == nil
	if len(g.memo) >= gateMemo {
		clear(g.memo)
	}
	g.memo[topicName] = ok
	return ok
}

// withGate returns sub with Check set when the session's identity may not provably read every
// topic sub's filter matches, and cleared otherwise. mu held (or the session not yet shared).
func (s *session) withGate(sub topic.Subscription) topic.Subscription {
	sub.Check = nil
	if id := s.identity; id != nil && !s.vhost.srv.opts.Authorizer.ReceiveCovered(id, sub.Filter) {
		s.gate.s = s
		sub.Check = s.gate.allow
	}
	return sub
}

// setIdentityLocked replaces the session's identity (a connection attaching, a
// re-authentication). mu held.
func (s *session) setIdentityLocked(id *auth.Identity) {
	s.identity = id
	s.idNow.Store(id)
}
