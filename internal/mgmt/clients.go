package mgmt

import (
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/topic"
)

// connectionBody is a connection as RabbitMQ lists one, with MQTT's fields.
type connectionBody struct {
	Name             string `json:"name"` // "<peer> -> <local>", the key of DELETE /api/connections/{name}
	Vhost            string `json:"vhost"`
	User             string `json:"user"`
	ClientID         string `json:"client_id"`
	Protocol         string `json:"protocol"`
	PeerHost         string `json:"peer_host"`
	PeerPort         int    `json:"peer_port"`
	Host             string `json:"host"`
	Port             int    `json:"port"`
	Listener         string `json:"listener"`
	SSL              bool   `json:"ssl"`
	ConnectedAt      int64  `json:"connected_at"` // milliseconds since the epoch
	AuthMechanism    string `json:"auth_mechanism"`
	CredentialExpiry *int64 `json:"credential_expiry"` // milliseconds since the epoch; null: none
	Timeout          int    `json:"timeout"`           // keep alive, seconds
	State            string `json:"state"`
	Type             string `json:"type"`
	traffic
}

func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func millis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

func (h *handler) connectionOut(ci broker.ConnectionInfo) connectionBody {
	b := connectionBody{Name: ci.Name, Vhost: ci.Vhost, User: ci.User, ClientID: ci.ClientID, Protocol: ci.Protocol,
		Listener: ci.Listener, SSL: ci.TLS, ConnectedAt: ci.ConnectedAt.UnixMilli(), AuthMechanism: ci.AuthMethod,
		CredentialExpiry: millis(ci.CredentialExpiry), Timeout: ci.KeepAlive, State: "running", Type: "network"}
	b.PeerHost, b.PeerPort = splitAddr(ci.Peer)
	if _, local, ok := strings.Cut(ci.Name, " -> "); ok {
		b.Host, b.Port = splitAddr(local)
	}
	b.traffic = h.rates.traffic("conn\x00"+ci.Name, counters{cRecvOct: ci.BytesIn, cSendOct: ci.BytesOut,
		cPublish: ci.MessagesIn, cDeliverGet: ci.MessagesOut})
	return b
}

// GET /api/connections and GET /api/vhosts/{vhost}/connections
func (h *handler) listConnections(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost := r.PathValue("vhost")
	if vhost != "" {
		if err := h.vhost(c, vhost); err != nil {
			return err
		}
	}
	out := []connectionBody{}
	for _, ci := range h.srv.Connections(vhost) {
		if c.sees(ci.Vhost) {
			out = append(out, h.connectionOut(ci))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /api/connections/{name}: the client gets v5 DISCONNECT 0x98 and its will is published.
func (h *handler) closeConnection(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	if !h.srv.CloseConnection(name, withWill(r)) {
		return notFound("connection %s not found", name)
	}
	h.log.Info("connection closed through the API", "user", c.name(), "connection", name)
	return noContent(w)
}

type subscriptionBody struct {
	Filter                 string `json:"filter"`
	QoS                    byte   `json:"qos"`
	NoLocal                bool   `json:"no_local"`
	RetainAsPublished      bool   `json:"retain_as_published"`
	RetainHandling         byte   `json:"retain_handling"`
	SubscriptionIdentifier uint32 `json:"subscription_identifier,omitempty"`
}

// sessionBody is a session, listed as LavinMQ lists one: a queue "mqtt.<client_id>".
type sessionBody struct {
	Name                   string             `json:"name"`
	Vhost                  string             `json:"vhost"`
	ClientID               string             `json:"client_id"`
	User                   string             `json:"user"` // the owner's user name
	Durable                bool               `json:"durable"`
	Connected              bool               `json:"connected"`
	State                  string             `json:"state"` // "running" when connected, else "idle"
	Messages               int                `json:"messages"`
	MessagesUnacknowledged int                `json:"messages_unacknowledged"`
	Dropped                uint64             `json:"dropped"`         // messages not delivered to it: it fell behind its limits
	ExpiryInterval         uint32             `json:"expiry_interval"` // seconds; 4294967295: never
	ExpiresAt              *int64             `json:"expires_at"`      // milliseconds since the epoch; null while connected or never
	Subscriptions          []subscriptionBody `json:"subscriptions"`
	Will                   *willBody          `json:"will"` // null when none; never the payload
}

// willBody is a session's will, without its payload.
type willBody struct {
	Topic    string `json:"topic"`
	QoS      byte   `json:"qos"`
	Retain   bool   `json:"retain"`
	Delay    int64  `json:"delay"` // Will Delay Interval, seconds
	Pending  bool   `json:"pending"`
	EarnedAt *int64 `json:"earned_at"` // milliseconds since the epoch; null while connected
	FiresAt  *int64 `json:"fires_at"`  // when a pending will is due
}

// withWill reads ?will=false of DELETE /api/connections and /api/sessions: the administrator
// ends the client without its will (default: the will is published, as for any kick).
func withWill(r *http.Request) bool { return r.URL.Query().Get("will") != "false" }

// GET /api/sessions/{vhost}
func (h *handler) listSessions(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost := r.PathValue("vhost")
	if err := h.vhost(c, vhost); err != nil {
		return err
	}
	list, ok := h.srv.Sessions(vhost)
	if !ok {
		return notFound("vhost %s not found", vhost)
	}
	out := make([]sessionBody, 0, len(list))
	for _, s := range list {
		if !c.all && s.User != c.name() {
			continue // a management user sees its own sessions only (docs/api.md, "Access by tag")
		}
		b := sessionBody{Name: s.Name, Vhost: s.Vhost, ClientID: s.ClientID, User: s.User, Durable: s.Durable, Connected: s.Connected,
			State: "idle", Messages: s.Queued, MessagesUnacknowledged: s.Inflight, Dropped: s.Dropped, ExpiryInterval: s.ExpiryInterval,
			ExpiresAt: millis(s.ExpiresAt), Subscriptions: []subscriptionBody{}}
		if s.Connected {
			b.State = "running"
		}
		if w := s.Will; w != nil {
			b.Will = &willBody{Topic: w.Topic, QoS: w.QoS, Retain: w.Retain, Delay: int64(w.Delay / time.Second), Pending: w.Pending,
				EarnedAt: millis(w.EarnedAt), FiresAt: millis(w.FiresAt)}
		}
		for _, sub := range s.Subscriptions {
			b.Subscriptions = append(b.Subscriptions, subscriptionBody{Filter: sub.Filter, QoS: sub.QoS, NoLocal: sub.NoLocal,
				RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, SubscriptionIdentifier: sub.ID})
		}
		out = append(out, b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /api/sessions/{vhost}/{client_id}: a connected client gets DISCONNECT 0x98; the
// session's state is removed and its will published.
func (h *handler) deleteSession(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, id := r.PathValue("vhost"), r.PathValue("client_id")
	if !h.srv.DeleteSession(vhost, id, withWill(r)) {
		return notFound("no session %s in vhost %s", id, vhost)
	}
	h.log.Info("session deleted through the API", "user", c.name(), "vhost", vhost, "client_id", id)
	return noContent(w)
}

// Retained listing bounds.
const (
	defaultRetainedLimit = 1000
	maxRetainedLimit     = 100000
)

type retainedBody struct {
	Vhost           string `json:"vhost"`
	Topic           string `json:"topic"`
	Payload         string `json:"payload"`
	PayloadEncoding string `json:"payload_encoding"` // always "base64"
	PayloadBytes    int    `json:"payload_bytes"`
	QoS             byte   `json:"qos"`
	ExpiresAt       *int64 `json:"expires_at"` // milliseconds since the epoch; null: never
}

// GET /api/retained/{vhost}?topic=<filter, default #>&limit=<n, default 1000>
func (h *handler) listRetained(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost := r.PathValue("vhost")
	if err := h.vhost(c, vhost); err != nil {
		return err
	}
	q := r.URL.Query()
	filter := q.Get("topic")
	if filter == "" {
		filter = "#"
	}
	if err := topic.ValidFilter(filter); err != nil {
		return badRequest("topic: %s", strings.TrimPrefix(err.Error(), "topic: "))
	}
	if strings.HasPrefix(filter, topic.SharePrefix) {
		return badRequest("topic: a shared subscription filter does not select retained messages")
	}
	limit := defaultRetainedLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxRetainedLimit {
			return badRequest("limit: want a whole number from 1 to %d", maxRetainedLimit)
		}
		limit = n
	}
	list, ok := h.srv.Retained(vhost, filter, limit)
	if !ok {
		return notFound("vhost %s not found", vhost)
	}
	out := make([]retainedBody, 0, len(list))
	reader := h.topicReader(c, vhost)
	for _, m := range list {
		if !reader(m.Topic) {
			continue // not readable by the caller's own topic permissions
		}
		out = append(out, retainedBody{Vhost: vhost, Topic: m.Topic, Payload: base64.StdEncoding.EncodeToString(m.Payload),
			PayloadEncoding: "base64", PayloadBytes: len(m.Payload), QoS: m.QoS, ExpiresAt: millis(m.Expiry)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /api/retained/{vhost}/{topic...}: the topic may span path segments ("a/b/c") or be
// one URL-encoded segment ("a%2Fb%2Fc"); a topic with an empty level ("a//b", "/a") must be
// encoded.
func (h *handler) deleteRetained(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, name := r.PathValue("vhost"), r.PathValue("topic")
	if err := topic.ValidName(name); err != nil {
		return badRequest("topic: %s", strings.TrimPrefix(err.Error(), "topic: "))
	}
	if !h.dir.HasVhost(vhost) {
		return notFound("vhost %s not found", vhost)
	}
	if !h.srv.DeleteRetained(vhost, name) {
		return notFound("no retained message on topic %s in vhost %s", name, vhost)
	}
	h.log.Info("retained message deleted through the API", "user", c.name(), "vhost", vhost, "topic", name)
	return noContent(w)
}

// topicReader returns whether the caller may see a retained message's topic and payload in
// vhost: an administrator sees every one; anyone else only those its own read permission on
// the vhost lets it receive, exactly as an MQTT subscriber of that user would (RabbitMQ, too,
// asks for read permission before a queue's messages are shown). A rule naming {client_id}
// has no client here and grants nothing.
func (h *handler) topicReader(c *caller, vhost string) func(topic string) bool {
	if c.admin() {
		return func(string) bool { return true }
	}
	id := *c.id
	id.Vhost = vhost
	chk := h.dir.Checker()
	return func(name string) bool { return chk.CanRead(&id, name) == nil }
}
