package mgmt

import (
	"net/http"
	"strings"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/directory"
)

// vhostBody is a vhost as listed, RabbitMQ's shape with MQTT's counts.
type vhostBody struct {
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Tracing       bool     `json:"tracing"`
	Connections   int      `json:"connections"`
	Sessions      int      `json:"sessions"`
	Subscriptions int      `json:"subscriptions"`
	Retained      int      `json:"retained"`
	Messages      int      `json:"messages"` // queued in sessions
	Dropped       uint64   `json:"dropped"`
	traffic
}

func (h *handler) vhostOut(name string, st broker.SysStats) vhostBody {
	return vhostBody{Name: name, Tags: []string{}, Connections: st.ClientsConnected, Sessions: st.Sessions,
		Subscriptions: st.Subscriptions, Retained: st.Retained, Messages: st.Queued, Dropped: st.Dropped,
		traffic: h.rates.traffic("vhost\x00"+name, statCounters(st))}
}

// GET /api/vhosts: the vhosts the caller sees.
func (h *handler) listVhosts(w http.ResponseWriter, _ *http.Request, c *caller) error {
	out := []vhostBody{}
	for _, name := range h.dir.Vhosts() {
		if st, ok := h.srv.VhostStats(name); ok && c.sees(name) {
			out = append(out, h.vhostOut(name, st))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /api/vhosts/{name}
func (h *handler) getVhost(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	if err := h.vhost(c, name); err != nil {
		return err
	}
	st, ok := h.srv.VhostStats(name)
	if !ok {
		return notFound("vhost %s not found", name)
	}
	writeJSON(w, http.StatusOK, h.vhostOut(name, st))
	return nil
}

// PUT /api/vhosts/{name}: 201 created, 204 when it exists. A body (description, tags) may be
// sent and is ignored.
func (h *handler) putVhost(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	if err := checkName("vhost", name); err != nil {
		return err
	}
	if strings.Contains(name, ":") {
		// MQTT selects the vhost with the user name "vhost:user", split at the first colon.
		return badRequest("vhost name: must not contain ':', which separates the vhost from the user in an MQTT user name")
	}
	var ignored struct {
		Description string `json:"description"`
	}
	if err := decodeBody(w, r, &ignored); err != nil {
		return err
	}
	created, err := h.dir.AddVhost(name)
	if err != nil {
		return changeErr(err)
	}
	if !created {
		return noContent(w)
	}
	h.log.Info("vhost created", "user", c.name(), "vhost", name)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// DELETE /api/vhosts/{name}
func (h *handler) deleteVhost(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	ok, err := h.dir.DeleteVhost(name)
	if err != nil {
		return changeErr(err)
	}
	if !ok {
		return notFound("vhost %s not found", name)
	}
	h.log.Info("vhost deleted through the API", "user", c.name(), "vhost", name)
	return noContent(w)
}

// GET /api/permissions: the permissions on the vhosts the caller sees.
func (h *handler) listPermissions(w http.ResponseWriter, _ *http.Request, c *caller) error {
	out := []acl.Permission{}
	for _, p := range h.dir.Permissions(directory.Filter{}) {
		if c.sees(p.Vhost) {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /api/permissions/{vhost}/{user}
func (h *handler) getPermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	if !c.sees(vhost) {
		return forbidden("user %s has no access to vhost %s", c.name(), vhost)
	}
	if p, ok := h.dir.Permission(user, vhost); ok {
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	return notFound("no permissions for user %s on vhost %s", user, vhost)
}

// targetExists checks the user and the vhost of a PUT permission: 400 when either is missing,
// as RabbitMQ answers (vhost_not_found, user_not_found).
func (h *handler) targetExists(vhost, user string) error {
	if !h.dir.HasVhost(vhost) {
		return badRequest("vhost %s not found", vhost)
	}
	if _, ok := h.dir.User(user); !ok {
		return badRequest("user %s not found", user)
	}
	return nil
}

// PUT /api/permissions/{vhost}/{user}: {"configure": "…", "write": "…", "read": "…"}.
// 201 created, 204 updated.
func (h *handler) putPermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	if err := h.targetExists(vhost, user); err != nil {
		return err
	}
	var b struct {
		Configure *string `json:"configure"`
		Write     *string `json:"write"`
		Read      *string `json:"read"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	p := acl.Permission{User: user, Vhost: vhost}
	var err error
	if p.Configure, err = required("configure", b.Configure); err != nil {
		return err
	}
	if p.Write, err = required("write", b.Write); err != nil {
		return err
	}
	if p.Read, err = required("read", b.Read); err != nil {
		return err
	}
	_, exists := h.dir.Permission(user, vhost)
	if err := h.dir.SetPermission(p); err != nil {
		return changeErr(err)
	}
	h.log.Info("permission set", "user", c.name(), "name", user, "vhost", vhost)
	if exists {
		return noContent(w)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// fieldOf shortens an acl error to the field at fault and the cause:
// "acl: permission \"u\" on vhost \"/\": write: ..." → "write: ...".
func fieldOf(err error) string {
	s := err.Error()
	for _, f := range []string{": configure: ", ": write: ", ": read: "} {
		if i := strings.Index(s, f); i >= 0 {
			return s[i+2:]
		}
	}
	return strings.TrimPrefix(s, "acl: ")
}

// DELETE /api/permissions/{vhost}/{user}
func (h *handler) deletePermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	ok, err := h.dir.DeletePermission(user, vhost)
	if err != nil {
		return changeErr(err)
	}
	if !ok {
		return notFound("no permissions for user %s on vhost %s", user, vhost)
	}
	h.log.Info("permission deleted", "user", c.name(), "name", user, "vhost", vhost)
	return noContent(w)
}

// GET /api/topic-permissions: the topic permissions on the vhosts the caller sees.
func (h *handler) listTopicPermissions(w http.ResponseWriter, _ *http.Request, c *caller) error {
	out := []acl.TopicPermission{}
	for _, p := range h.dir.TopicPermissions(directory.Filter{}) {
		if c.sees(p.Vhost) {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) topicPermissionsOf(vhost, user string) []acl.TopicPermission {
	return h.dir.TopicPermissions(directory.Filter{User: user, Vhost: vhost})
}

// GET /api/topic-permissions/{vhost}/{user}: a list, one entry per exchange, as RabbitMQ.
func (h *handler) getTopicPermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	if !c.sees(vhost) {
		return forbidden("user %s has no access to vhost %s", c.name(), vhost)
	}
	list := h.topicPermissionsOf(vhost, user)
	if len(list) == 0 {
		return notFound("no topic permissions for user %s on vhost %s", user, vhost)
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// PUT /api/topic-permissions/{vhost}/{user}: {"exchange": "mqtt.default", "write": "…",
// "read": "…"}; exchange defaults to mqtt.default. 201 created, 204 updated.
func (h *handler) putTopicPermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	if err := h.targetExists(vhost, user); err != nil {
		return err
	}
	var b struct {
		Exchange *string `json:"exchange"`
		Write    *string `json:"write"`
		Read     *string `json:"read"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	p := acl.TopicPermission{User: user, Vhost: vhost, Exchange: acl.DefaultExchange}
	if b.Exchange != nil {
		if p.Exchange = *b.Exchange; p.Exchange == "" {
			return badRequest("exchange: empty")
		}
	}
	var err error
	if p.Write, err = required("write", b.Write); err != nil {
		return err
	}
	if p.Read, err = required("read", b.Read); err != nil {
		return err
	}
	exists := false
	for _, q := range h.topicPermissionsOf(vhost, user) {
		exists = exists || q.Exchange == p.Exchange
	}
	if err := h.dir.SetTopicPermission(p); err != nil {
		return changeErr(err)
	}
	h.log.Info("topic permission set", "user", c.name(), "name", user, "vhost", vhost, "exchange", p.Exchange)
	if exists {
		return noContent(w)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// DELETE /api/topic-permissions/{vhost}/{user}[?exchange=…]: every exchange's entry, or the
// named one's.
func (h *handler) deleteTopicPermission(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, user := r.PathValue("vhost"), r.PathValue("user")
	exchange := r.URL.Query().Get("exchange")
	deleted := 0
	for _, p := range h.topicPermissionsOf(vhost, user) {
		if exchange != "" && p.Exchange != exchange {
			continue
		}
		ok, err := h.dir.DeleteTopicPermission(user, vhost, p.Exchange)
		if err != nil {
			return changeErr(err)
		}
		if ok {
			deleted++
		}
	}
	if deleted == 0 {
		return notFound("no topic permissions for user %s on vhost %s", user, vhost)
	}
	h.log.Info("topic permissions deleted", "user", c.name(), "name", user, "vhost", vhost, "count", deleted)
	return noContent(w)
}
