package mgmt

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/store"
)

// collector is the broker's Prometheus collector: it reads the broker's Overview, the event
// counters and the store's commit histogram at scrape time, so nothing on the broker's hot path
// touches Prometheus.
type collector struct {
	h *handler

	buildInfo, uptime, vhosts, users                    *prometheus.Desc
	connections, vhostConnections, sessions             *prometheus.Desc
	connects, refused, authFailures                     *prometheus.Desc
	msgsIn, msgsOut, bytesIn, bytesOut, dropped, denied *prometheus.Desc
	retained, subscriptions, queued                     *prometheus.Desc
	commitLatency                                       *prometheus.Desc
	loginFailures, disconnects, wills, willsSuppressed  *prometheus.Desc
	clientDropped, preauth                              *prometheus.Desc
	loginDelays, limitRefusals, bans                    *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(h *handler) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("turnstile_"+name, help, labels, nil)
	}
	return &collector{
		h:                h,
		buildInfo:        d("build_info", "Always 1; the version label is the broker's version.", "version"),
		uptime:           d("uptime_seconds", "Seconds since the broker started."),
		vhosts:           d("vhosts", "Number of vhosts."),
		users:            d("users", "Number of local users."),
		connections:      d("connections", "Connected MQTT clients, in every vhost."),
		vhostConnections: d("vhost_connections", "Connected MQTT clients of a vhost.", "vhost"),
		sessions:         d("sessions", "Sessions of a vhost, connected or not.", "vhost"),
		connects:         d("connects_total", "Successful CONNECTs since the broker started."),
		refused:          d("connects_refused_total", "Refused CONNECTs, by CONNACK reason.", "reason"),
		authFailures: d("authentication_failures_total",
			"Refused CONNECTs whose reason is an authentication or authorization failure, by reason.", "reason"),
		msgsIn:        d("received_messages_total", "PUBLISH packets received from clients.", "vhost"),
		msgsOut:       d("sent_messages_total", "PUBLISH packets sent to clients.", "vhost"),
		bytesIn:       d("received_bytes_total", "Bytes received from clients.", "vhost"),
		bytesOut:      d("sent_bytes_total", "Bytes sent to clients.", "vhost"),
		dropped:       d("dropped_messages_total", "Messages not delivered, by reason.", "vhost", "reason"),
		denied:        d("authorization_denials_total", "Publishes (wills included) and subscribes refused by permissions.", "action"),
		retained:      d("retained_messages", "Retained messages of a vhost.", "vhost"),
		subscriptions: d("subscriptions", "Subscriptions of a vhost.", "vhost"),
		queued:        d("queued_messages", "QoS 1 and 2 messages waiting in the sessions of a vhost.", "vhost"),
		commitLatency: d("store_commit_latency_seconds", "Latency of the store's group commits."),
		loginFailures: d("login_failures_total", "Failed logins, MQTT and management API alike, by reason.", "reason"),
		disconnects:   d("disconnects_total", "Connections that had connected and ended, by reason.", "reason"),
		wills:         d("will_published_total", "Last Will messages published."),
		willsSuppressed: d("will_suppressed_total",
			"Last Will messages discarded without being published, by reason.", "reason"),
		clientDropped: d("client_dropped_messages_total",
			"Messages not delivered to a client that fell behind its limits, for the 100 clients with the most.", "vhost", "client_id"),
		preauth:     d("preauth_bytes", "Memory claimed by CONNECT packets being read, before login."),
		loginDelays: d("login_delays_total", "Logins the login limiter delayed before checking their credentials."),
		limitRefusals: d("limit_refusals_total",
			"CONNECTs, subscriptions and retained publishes refused by a limit, by limit.", "limit"),
		bans: d("bans", "Bans in force."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buildInfo, c.uptime, c.vhosts, c.users, c.connections, c.vhostConnections,
		c.sessions, c.connects, c.refused, c.authFailures, c.msgsIn, c.msgsOut, c.bytesIn, c.bytesOut, c.dropped, c.denied,
		c.retained, c.subscriptions, c.queued, c.commitLatency, c.loginFailures, c.disconnects, c.wills, c.willsSuppressed,
		c.clientDropped, c.preauth, c.loginDelays, c.limitRefusals, c.bans} {
		ch <- d
	}
}

// authFailureReasons are the CONNACK reasons that count as failed authentications.
var authFailureReasons = map[string]bool{
	"bad_user_name_or_password": true,
	"not_authorized":            true,
	"bad_authentication_method": true,
	"banned":                    true,
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	o := h.srv.Overview()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.buildInfo, 1, o.Version)
	gauge(c.uptime, o.Uptime.Seconds())
	gauge(c.vhosts, float64(o.Vhosts))
	gauge(c.users, float64(h.dir.UserCount()))
	gauge(c.connections, float64(o.Totals.ClientsConnected))
	counter(c.connects, h.count.Total(event.Connected))
	refused := h.count.Refusals()
	for _, r := range []string{"bad_user_name_or_password", "not_authorized"} {
		if _, ok := refused[r]; !ok { // the usual reasons exist from the start, at 0
			refused[r] = 0
		}
	}
	for reason, n := range refused {
		counter(c.refused, n, reason)
		if authFailureReasons[reason] {
			counter(c.authFailures, n, reason)
		}
	}
	denied := h.count.ByReason(event.Denied)
	counter(c.denied, denied["publish"], "publish")
	counter(c.denied, denied["subscribe"], "subscribe")
	for reason, n := range h.count.ByReason(event.LoginFailed) {
		counter(c.loginFailures, n, reason)
	}
	for reason, n := range h.count.ByReason(event.Disconnected) {
		counter(c.disconnects, n, reason)
	}
	counter(c.wills, h.count.Total(event.WillPublished))
	for _, d := range h.srv.TopDrops(100) {
		counter(c.clientDropped, d.Dropped, d.Vhost, d.ClientID)
	}
	gauge(c.preauth, float64(h.srv.PreauthBytes()))
	c.collectLimits(counter, gauge)
	for reason, n := range h.count.ByReason(event.WillSuppressed) {
		counter(c.willsSuppressed, n, reason)
	}
	for vhost, st := range o.PerVhost {
		gauge(c.vhostConnections, float64(st.ClientsConnected), vhost)
		gauge(c.sessions, float64(st.Sessions), vhost)
		counter(c.msgsIn, st.MessagesReceived, vhost)
		counter(c.msgsOut, st.MessagesSent, vhost)
		counter(c.bytesIn, st.BytesReceived, vhost)
		counter(c.bytesOut, st.BytesSent, vhost)
		for reason, n := range st.DroppedBy {
			counter(c.dropped, n, vhost, reason)
		}
		gauge(c.retained, float64(st.Retained), vhost)
		gauge(c.subscriptions, float64(st.Subscriptions), vhost)
		gauge(c.queued, float64(st.Queued), vhost)
	}
	cum, sum, count := h.commits.Snapshot()
	buckets := make(map[float64]uint64, len(cum))
	for i, ub := range store.CommitBuckets {
		buckets[ub] = cum[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.commitLatency, count, sum, buckets)
}
