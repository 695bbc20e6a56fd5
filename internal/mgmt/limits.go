package mgmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/turnstilemq/turnstile/internal/directory"
)

// The vhost and user limits, in RabbitMQ's shapes (docs/api.md, "Limits"):
//
//	GET    /api/vhost-limits                    [{"vhost": "/", "value": {"max-connections": 100}}]
//	GET    /api/vhost-limits/{vhost}            the same, for one vhost
//	GET    /api/vhost-limits/{vhost}/{name}     {"value": 100}
//	PUT    /api/vhost-limits/{vhost}/{name}     {"value": 100}; a negative value is no limit
//	DELETE /api/vhost-limits/{vhost}/{name}
//
// and /api/user-limits alike, with "user" for "vhost". Vhost limits are max-connections,
// max-sessions and max-retained; user limits max-connections.
func (h *handler) limitRoutes() {
	h.handle("GET", "/api/vhost-limits", reader, h.listVhostLimits)
	h.handle("GET", "/api/vhost-limits/{vhost}", reader, h.listVhostLimits)
	h.handle("GET", "/api/vhost-limits/{vhost}/{name}", reader, h.getVhostLimit)
	h.handle("PUT", "/api/vhost-limits/{vhost}/{name}", admin, h.putVhostLimit)
	h.handle("DELETE", "/api/vhost-limits/{vhost}/{name}", admin, h.deleteVhostLimit)

	h.handle("GET", "/api/user-limits", monitor, h.listUserLimits)
	h.handle("GET", "/api/user-limits/{user}", monitor, h.listUserLimits)
	h.handle("GET", "/api/user-limits/{user}/{name}", monitor, h.getUserLimit)
	h.handle("PUT", "/api/user-limits/{user}/{name}", admin, h.putUserLimit)
	h.handle("DELETE", "/api/user-limits/{user}/{name}", admin, h.deleteUserLimit)

	h.banRoutes()
}

type vhostLimitsBody struct {
	Vhost string           `json:"vhost"`
	Value map[string]int64 `json:"value"`
}

type userLimitsBody struct {
	User  string           `json:"user"`
	Value map[string]int64 `json:"value"`
}

type limitValue struct {
	Value int64 `json:"value"`
}

// GET /api/vhost-limits[/{vhost}]: the limits of the vhosts the caller sees, sorted by vhost.
func (h *handler) listVhostLimits(w http.ResponseWriter, r *http.Request, c *caller) error {
	all := h.dir.VhostLimits()
	names := slices.Sorted(maps.Keys(all))
	if one := r.PathValue("vhost"); one != "" {
		if err := h.vhost(c, one); err != nil {
			return err
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n != one })
	}
	out := []vhostLimitsBody{}
	for _, n := range names {
		if c.sees(n) {
			out = append(out, vhostLimitsBody{Vhost: n, Value: all[n]})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /api/vhost-limits/{vhost}/{name}
func (h *handler) getVhostLimit(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, name := r.PathValue("vhost"), r.PathValue("name")
	if err := h.vhost(c, vhost); err != nil {
		return err
	}
	v, ok := h.dir.VhostLimit(vhost, name)
	if !ok {
		return notFound("vhost %s has no limit %s", vhost, name)
	}
	writeJSON(w, http.StatusOK, limitValue{v})
	return nil
}

// PUT /api/vhost-limits/{vhost}/{name}: 204. New connections, sessions and retained messages
// are held to it; what already exists stays.
func (h *handler) putVhostLimit(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, name := r.PathValue("vhost"), r.PathValue("name")
	v, err := decodeLimit(w, r)
	if err != nil {
		return err
	}
	if err := h.dir.SetVhostLimit(vhost, name, v); err != nil {
		return limitErr(err)
	}
	h.log.Info("vhost limit set", "user", c.name(), "vhost", vhost, "limit", name, "value", v)
	return noContent(w)
}

// DELETE /api/vhost-limits/{vhost}/{name}: 204, or 404 when it was not set.
func (h *handler) deleteVhostLimit(w http.ResponseWriter, r *http.Request, c *caller) error {
	vhost, name := r.PathValue("vhost"), r.PathValue("name")
	ok, err := h.dir.ClearVhostLimit(vhost, name)
	if err != nil {
		return limitErr(err)
	}
	if !ok {
		return notFound("vhost %s has no limit %s", vhost, name)
	}
	h.log.Info("vhost limit cleared", "user", c.name(), "vhost", vhost, "limit", name)
	return noContent(w)
}

// GET /api/user-limits[/{user}]
func (h *handler) listUserLimits(w http.ResponseWriter, r *http.Request, _ *caller) error {
	all := h.dir.UserLimits()
	names := slices.Sorted(maps.Keys(all))
	if one := r.PathValue("user"); one != "" {
		if _, ok := h.dir.User(one); !ok {
			return notFound("user %s not found", one)
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n != one })
	}
	out := []userLimitsBody{}
	for _, n := range names {
		out = append(out, userLimitsBody{User: n, Value: all[n]})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /api/user-limits/{user}/{name}
func (h *handler) getUserLimit(w http.ResponseWriter, r *http.Request, _ *caller) error {
	user, name := r.PathValue("user"), r.PathValue("name")
	v, ok := h.dir.UserLimit(user, name)
	if !ok {
		return notFound("user %s has no limit %s", user, name)
	}
	writeJSON(w, http.StatusOK, limitValue{v})
	return nil
}

// PUT /api/user-limits/{user}/{name}: 204.
func (h *handler) putUserLimit(w http.ResponseWriter, r *http.Request, c *caller) error {
	user, name := r.PathValue("user"), r.PathValue("name")
	v, err := decodeLimit(w, r)
	if err != nil {
		return err
	}
	if err := h.dir.SetUserLimit(user, name, v); err != nil {
		return limitErr(err)
	}
	h.log.Info("user limit set", "user", c.name(), "name", user, "limit", name, "value", v)
	return noContent(w)
}

// DELETE /api/user-limits/{user}/{name}: 204, or 404 when it was not set.
func (h *handler) deleteUserLimit(w http.ResponseWriter, r *http.Request, c *caller) error {
	user, name := r.PathValue("user"), r.PathValue("name")
	ok, err := h.dir.ClearUserLimit(user, name)
	if err != nil {
		return limitErr(err)
	}
	if !ok {
		return notFound("user %s has no limit %s", user, name)
	}
	h.log.Info("user limit cleared", "user", c.name(), "name", user, "limit", name)
	return noContent(w)
}

// decodeLimit reads {"value": N}: N an integer (a negative one is no limit).
func decodeLimit(w http.ResponseWriter, r *http.Request) (int64, error) {
	var b struct {
		Value json.RawMessage `json:"value"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return 0, err
	}
	if b.Value == nil || string(b.Value) == "null" {
		return 0, badRequest("value: missing")
	}
	dec := json.NewDecoder(bytes.NewReader(b.Value))
	var n int64
	if err := dec.Decode(&n); err != nil {
		return 0, badRequest("value: want an integer (a negative one is no limit), got %s", b.Value)
	}
	return n, nil
}

// limitErr maps a directory error of a limit change: 404 for a missing vhost or user, 400 for
// an unknown limit, 503 when the store could not keep it.
func limitErr(err error) error {
	switch {
	case errors.Is(err, directory.ErrNoSuchVhost), errors.Is(err, directory.ErrNoSuchUser):
		return notFound("%v", err)
	case errors.Is(err, directory.ErrUnknownLimit):
		return badRequest("%v", err)
	}
	return changeErr(err)
}
