package broker

import (
	"sync"
	"sync/atomic"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// gateMemo bounds the topics a session's read gate remembers; when full it starts again.
const gateMemo = 1024

// readGate is a session's read permission per message: for a subscription whose filter is not
// provably inside the subscriber's topic read rule (Authorizer.ReceiveCovered), each delivered
// topic must pass Authorizer.CanReceive. Answers are remembered per topic until the session's
// identity or the policy (Authorizer.Generation) changes. The answer last given is readable
// without the lock, so a steady flow on one topic costs two atomic loads and a string compare,
// and a flow over many topics one map lookup; neither allocates once each topic was answered.
// Subscriptions that need no check carry no gate and cost nothing.
type readGate struct {
	s     *session                   // set once by newSession
	authz Authorizer                 // set once by newSession: the server's
	last  atomic.Pointer[gateAnswer] // the answer last given; nil: none yet

	mu       sync.Mutex
	gen      uint64                 // mu held
	id       *auth.Identity         // mu held
	memo     map[string]*gateAnswer // mu held
	prevSlow *gateAnswer            // mu held; the answer the locked path gave last
}

// gateAnswer is one remembered answer; it never changes once made.
type gateAnswer struct {
	topic string
	gen   uint64
	id    *auth.Identity
	ok    bool
}

// allow reports whether a message on topicName may be delivered to the session. It runs on
// the publisher's goroutine (and for retained messages on the subscriber's), holding no broker
// lock but its own.
func (g *readGate) allow(topicName string) bool {
	authz := g.authz
	id := g.s.idNow.Load()
	if id == nil {
		return false
	}
	gen := authz.Generation()
	cur := g.last.Load()
	if cur != nil && cur.gen == gen && cur.id == id && cur.topic == topicName {
		return cur.ok
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.memo == nil || gen != g.gen || id != g.id {
		g.memo = make(map[string]*gateAnswer)
		g.gen, g.id = gen, id
	}
	a, hit := g.memo[topicName]
	if !hit {
		if len(g.memo) >= gateMemo {
			clear(g.memo)
		}
		a = &gateAnswer{topic: topicName, gen: gen, id: id, ok: authz.CanReceive(id, g.s.id, topicName) == nil}
		g.memo[topicName] = a
	}
	// A topic answered here twice in a row is a run worth the lock-free path; topics taking
	// turns are not, and replacing the last answer on each would only add an atomic store.
	if cur == nil || cur.gen != gen || cur.id != id || a == g.prevSlow {
		g.last.Store(a)
	}
	g.prevSlow = a
	return a.ok
}

// withGate returns sub with Check set when the session's identity may not provably read every
// topic sub's filter matches, and cleared otherwise. mu held (or the session not yet shared).
func (s *session) withGate(sub topic.Subscription) topic.Subscription {
	sub.Check = nil
	if id := s.identity; id != nil && !s.vhost.srv.opts.Authorizer.ReceiveCovered(id, sub.Filter) {
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
