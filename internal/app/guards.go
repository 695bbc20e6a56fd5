package app

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/directory"
	"github.com/turnstilemq/turnstile/internal/event"
)

// The parts that guard the broker (docs/security.md): the limits of [mqtt], the vhost and user
// limits of the directory, the banned list, and the events of the login limiter.
var (
	_ broker.Quotas   = (*directory.Directory)(nil)
	_ broker.Bans     = (*ban.List)(nil)
	_ broker.Standing = (*ban.List)(nil)
	_ broker.Standing = standingList(nil)
)

// standingList asks each Standing in turn; the first that revokes an identity decides.
type standingList []broker.Standing

func (l standingList) Revoked(id *auth.Identity, at time.Time) (string, bool) {
	for _, s := range l {
		if reason, revoked := s.Revoked(id, at); revoked {
			return reason, true
		}
	}
	return "", false
}

// openGuards opens the banned list (in the store, namespace "bans") and completes the broker's
// options with the limits, the quotas, the bans and the standing checks (the standing already
// set: deleted users, revocations, AccessKeys; then the bans). Login delays of the chain become events.
func (a *App) openGuards(bo *broker.Options) error {
	bo2 := ban.Options{Clock: a.opts.Clock, Logger: a.log}
	if a.store != nil {
		bo2.Store = a.store
	}
	var err error
	if a.bans, err = ban.New(bo2); err != nil {
		return fmt.Errorf("[main] data_dir: %w", err)
	}
	m := &a.cfg.MQTT
	l := &bo.Limits
	l.MaxConnections, l.MaxSubscriptions = m.MaxConnections, m.MaxSubscriptionsPerClient
	l.MaxSessionsPerVhost, l.MaxRetainedPerVhost = m.MaxSessionsPerVhost, m.MaxRetainedPerVhost
	l.ConnectRate, l.ConnectBurst, l.ConnectRateExemptLoopback = float64(m.MaxConnectRate), m.MaxConnectBurst, m.ConnectRateExemptLoopback
	bo.Quotas = a.dir
	bo.Bans = a.bans
	bo.Standing = standingList{bo.Standing, a.bans}
	a.chain.OnLimit(func(n auth.LimitNotice) {
		if n.Refused {
			return // the refusal is a LoginFailed event of the broker or the API
		}
		a.events.Observe(event.Event{Kind: event.LoginDelayed, Time: clock.Or(a.opts.Clock).Now(), Listener: n.Listener, Remote: addrString(n.Remote),
			User: n.User, Reason: event.ReasonRateLimited, Detail: "delayed " + n.Delay.String() + " before checking the credentials"})
	})
	return nil
}

// enforceBans makes every new ban disconnect what it matches and suppress its wills, and
// applies the bans loaded from the store to the sessions recovered from it.
func (a *App) enforceBans() {
	a.bans.OnBan(func(b ban.Ban) {
		e := event.Event{Kind: event.Banned, Time: clock.Or(a.opts.Clock).Now(), Reason: string(b.As),
			Detail: fmt.Sprintf("%s %s banned by %s until %s (ban %s): %s", b.As, b.Who, b.By, b.Until.Format(time.RFC3339), b.ID, b.Reason)}
		switch b.As {
		case ban.ClientID:
			e.ClientID = b.Who
		case ban.Username:
			e.User = b.Who
		case ban.PeerHost, ban.PeerNet:
			e.Remote = b.Who
		}
		a.events.Observe(e)
		a.broker.EnforceBans()
	})
	a.broker.EnforceBans()
}

// allowedHosts splits [mgmt] allowed_hosts.
func allowedHosts(s string) []string {
	var out []string
	for h := range strings.SplitSeq(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Bans is the banned list, for the commands that run beside serve and for tests.
func (a *App) Bans() *ban.List { return a.bans }
