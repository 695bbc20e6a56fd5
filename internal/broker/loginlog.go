package broker

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
)

// Refused logins are logged at most once per source address per interval: the first refusal
// of a source is logged at once, the ones after it within the interval are counted, and the
// count is logged when the interval ends ("login refusals suppressed"). A client looping on a
// wrong password, a ban or a limit writes two WARN lines a minute, not thousands. Every refusal
// is still an event (metrics, audit log).

// loginLogInterval is the interval of the login refusal log.
const loginLogInterval = time.Minute

// maxLoginLogSources bounds the sources tracked in one interval; refusals from further sources
// are summed in one line.
const maxLoginLogSources = 4096

type loginLog struct {
	mu      sync.Mutex
	sources map[netip.Prefix]*suppressed
	other   int // refusals from sources past maxLoginLogSources
	timer   clock.Timer
}

type suppressed struct {
	count    int
	clientID string // of the latest suppressed refusal
	reason   string
}

// logRefused logs the refusal of c's CONNECT (client id and reason, never a credential) unless
// its source was logged within the interval; then it is counted for the summary.
func (s *Server) logRefused(c *client, clientID, why string) {
	if !s.log.Enabled(context.Background(), slog.LevelWarn) {
		return
	}
	key, _ := auth.SourceKey(remoteIP(c.conn)) // the zero prefix: a unix socket
	l := &s.guard.logins
	l.mu.Lock()
	if e, seen := l.sources[key]; seen {
		e.count++
		e.clientID, e.reason = clientID, why
		l.mu.Unlock()
		return
	}
	if len(l.sources) >= maxLoginLogSources {
		l.other++
		l.mu.Unlock()
		return
	}
	if l.sources == nil {
		l.sources = map[netip.Prefix]*suppressed{}
	}
	l.sources[key] = &suppressed{}
	if l.timer == nil {
		l.timer = s.clock.AfterFunc(loginLogInterval, s.flushLoginLog)
	}
	l.mu.Unlock()
	c.logf(slog.LevelWarn, "login refused", "client_id", clientID, "reason", why)
}

// flushLoginLog ends an interval: one line per source with refusals not logged, and a new
// interval starts empty.
func (s *Server) flushLoginLog() {
	l := &s.guard.logins
	l.mu.Lock()
	sources, other := l.sources, l.other
	l.sources, l.other, l.timer = nil, 0, nil
	l.mu.Unlock()
	for key, e := range sources {
		if e.count == 0 {
			continue
		}
		src := "unix socket"
		if key.IsValid() {
			src = key.String()
		}
		s.log.Warn("login refusals suppressed", "source", src, "count", e.count, "interval", loginLogInterval.String(),
			"last_client_id", e.clientID, "last_reason", e.reason)
	}
	if other > 0 {
		s.log.Warn("login refusals suppressed", "source", "other sources", "count", other, "interval", loginLogInterval.String())
	}
}
