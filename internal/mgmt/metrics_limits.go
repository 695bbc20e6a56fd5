package mgmt

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnstilemq/turnstile/internal/event"
)

// limitNames are the limits of turnstile_limit_refusals_total, every one present from the start.
var limitNames = []string{event.LimitMaxConnections, event.LimitVhostMaxConnections, event.LimitUserMaxConnections,
	event.LimitVhostMaxSessions, event.LimitVhostMaxRetained, event.LimitMaxSubscriptions, event.LimitConnectRate}

// collectLimits adds the login limiter's delays, the refusals by limit (refused CONNECTs whose
// reason is a limit, and LimitExceeded events) and the bans in force.
func (c *collector) collectLimits(counter func(d *prometheus.Desc, v uint64, labels ...string), gauge func(d *prometheus.Desc, v float64, labels ...string)) {
	h := c.h
	counter(c.loginDelays, h.count.Total(event.LoginDelayed))
	refused, exceeded := h.count.ByReason(event.Refused), h.count.ByReason(event.LimitExceeded)
	for _, l := range limitNames {
		counter(c.limitRefusals, refused[l]+exceeded[l], l)
	}
	n := 0
	if h.bans != nil {
		now := h.now()
		for _, b := range h.bans.List() {
			if b.InForce(now) {
				n++
			}
		}
	}
	gauge(c.bans, float64(n))
}
