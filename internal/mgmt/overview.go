package mgmt

import (
	"net/http"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/event"
)

// GET /api/health: liveness. The process answers HTTP.
func (h *handler) health(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /api/health/ready: readiness. The broker accepts MQTT connections and its store can
// write (while it cannot, QoS 1/2 publishes and subscription changes of persistent sessions are
// refused: docs/storage.md). The endpoint is unauthenticated, so the reason names no path; the
// log has the details.
func (h *handler) ready(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	if !h.srv.Ready() {
		return apiError(http.StatusServiceUnavailable, "service_unavailable", "the broker is not accepting connections")
	}
	if h.srv.StoreHealth() != nil {
		return apiError(http.StatusServiceUnavailable, "service_unavailable", "the store cannot write (a full or failing disk); see the log")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /metrics: Prometheus text format, unauthenticated (see docs/api.md).
func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request, _ *caller) error {
	h.metrics.ServeHTTP(w, r)
	return nil
}

type objectTotals struct {
	Connections   int  `json:"connections"`
	Sessions      int  `json:"sessions"`
	Queues        int  `json:"queues"` // sessions, listed as queues mqtt.<client_id>
	Subscriptions int  `json:"subscriptions"`
	Retained      int  `json:"retained"`
	Vhosts        int  `json:"vhosts"`
	Users         *int `json:"users,omitempty"`
}

type queueTotals struct {
	Messages int `json:"messages"`
}

type overviewBody struct {
	ManagementVersion string            `json:"management_version"`
	ProductName       string            `json:"product_name"`
	ProductVersion    string            `json:"product_version"`
	Uptime            int64             `json:"uptime"` // milliseconds
	ObjectTotals      objectTotals      `json:"object_totals"`
	QueueTotals       queueTotals       `json:"queue_totals"`
	Dropped           uint64            `json:"dropped"`
	DroppedBy         map[string]uint64 `json:"dropped_by"`
	traffic
	// Server-wide counters, shown to administrators and monitoring users only.
	Connects        *uint64           `json:"connects,omitempty"`
	ConnectsRefused map[string]uint64 `json:"connects_refused,omitempty"`
	Denied          map[string]uint64 `json:"authorization_denials,omitempty"`
}

// GET /api/overview: totals over the vhosts the caller sees; the server-wide counters only for
// callers who see every vhost.
func (h *handler) overview(w http.ResponseWriter, _ *http.Request, c *caller) error {
	o := h.srv.Overview()
	body := overviewBody{ManagementVersion: o.Version, ProductName: "Turnstile", ProductVersion: o.Version,
		Uptime: o.Uptime.Milliseconds(), DroppedBy: map[string]uint64{}}
	var t broker.SysStats
	for name, st := range o.PerVhost {
		if !c.sees(name) {
			continue
		}
		body.ObjectTotals.Vhosts++
		t.ClientsConnected += st.ClientsConnected
		t.Sessions += st.Sessions
		t.Subscriptions += st.Subscriptions
		t.Retained += st.Retained
		t.Queued += st.Queued
		t.MessagesReceived += st.MessagesReceived
		t.MessagesSent += st.MessagesSent
		t.BytesReceived += st.BytesReceived
		t.BytesSent += st.BytesSent
		t.Dropped += st.Dropped
		for r, n := range st.DroppedBy {
			body.DroppedBy[r] += n
		}
	}
	body.ObjectTotals.Connections, body.ObjectTotals.Sessions, body.ObjectTotals.Queues = t.ClientsConnected, t.Sessions, t.Sessions
	body.ObjectTotals.Subscriptions, body.ObjectTotals.Retained = t.Subscriptions, t.Retained
	body.QueueTotals.Messages, body.Dropped = t.Queued, t.Dropped
	key := "overview"
	if c.all {
		users, connects, denied := h.dir.UserCount(), h.count.Total(event.Connected), h.count.ByReason(event.Denied)
		body.ObjectTotals.Users = &users
		body.Connects, body.ConnectsRefused = &connects, h.count.Refusals()
		body.Denied = map[string]uint64{"publish": denied["publish"], "subscribe": denied["subscribe"]}
	} else {
		key = "overview\x00" + c.name()
	}
	body.traffic = h.rates.traffic(key, statCounters(t))
	writeJSON(w, http.StatusOK, body)
	return nil
}

func statCounters(st broker.SysStats) counters {
	return counters{cRecvOct: st.BytesReceived, cSendOct: st.BytesSent, cPublish: st.MessagesReceived, cDeliverGet: st.MessagesSent}
}

// GET /api/whoami
func (h *handler) whoami(w http.ResponseWriter, _ *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, map[string]any{"name": c.name(), "tags": tagStrings(c.id.Tags)})
	return nil
}
