package mgmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/turnstilemq/turnstile/internal/ban"
)

// The banned list, in EMQX's shapes (docs/api.md, "Bans"); administrators only:
//
//	GET    /api/bans         [{"id", "as", "who", "by", "reason", "at", "until"}]
//	POST   /api/bans         {"as": "clientid"|"username"|"peerhost"|"peerhost_net", "who": "...",
//	                          "reason": "...", "until": RFC 3339 or Unix seconds (a year when left out)}
//	DELETE /api/bans/{id}
func (h *handler) banRoutes() {
	h.handle("GET", "/api/bans", admin, h.listBans)
	h.handle("POST", "/api/bans", admin, h.addBan)
	h.handle("DELETE", "/api/bans/{id}", admin, h.deleteBan)
}

// banBody is a ban as listed: times in RFC 3339, UTC.
type banBody struct {
	ID     string `json:"id"`
	As     string `json:"as"`
	Who    string `json:"who"`
	By     string `json:"by"`
	Reason string `json:"reason"`
	At     string `json:"at"`
	Until  string `json:"until"`
}

func banOut(b ban.Ban) banBody {
	return banBody{ID: b.ID, As: string(b.As), Who: b.Who, By: b.By, Reason: b.Reason,
		At: b.At.UTC().Format(time.RFC3339), Until: b.Until.UTC().Format(time.RFC3339)}
}

func (h *handler) banList() (*ban.List, error) {
	if h.bans == nil {
		return nil, notFound("bans are not available")
	}
	return h.bans, nil
}

// GET /api/bans: the bans in force, oldest first.
func (h *handler) listBans(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	l, err := h.banList()
	if err != nil {
		return err
	}
	now := h.now()
	out := []banBody{}
	for _, b := range l.List() {
		if b.InForce(now) {
			out = append(out, banOut(b))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /api/bans: 201 with the ban; 200 with it when what it names was banned already (its
// until and reason are updated). The matching clients are disconnected (DISCONNECT 0x98) and
// their wills suppressed before the answer. "by" is the caller.
func (h *handler) addBan(w http.ResponseWriter, r *http.Request, c *caller) error {
	l, err := h.banList()
	if err != nil {
		return err
	}
	var b struct {
		As     *string         `json:"as"`
		Who    *string         `json:"who"`
		Reason string          `json:"reason"`
		Until  json.RawMessage `json:"until"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	as, err := required("as", b.As)
	if err != nil {
		return err
	}
	who, err := required("who", b.Who)
	if err != nil {
		return err
	}
	until, err := decodeTime("until", b.Until)
	if err != nil {
		return err
	}
	nb, created, err := l.Add(ban.Ban{As: ban.Kind(as), Who: who, By: c.name(), Reason: b.Reason, Until: until})
	if err != nil {
		if errors.Is(err, ban.ErrInvalid) || errors.Is(err, ban.ErrFull) {
			return badRequest("%v", err)
		}
		return err
	}
	h.log.Info("ban added", "user", c.name(), "id", nb.ID, "as", string(nb.As), "who", nb.Who, "until", nb.Until)
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, banOut(nb))
	return nil
}

// DELETE /api/bans/{id}: 204, or 404.
func (h *handler) deleteBan(w http.ResponseWriter, r *http.Request, c *caller) error {
	l, err := h.banList()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !l.Delete(id) {
		return notFound("ban %s not found", id)
	}
	h.log.Info("ban lifted", "user", c.name(), "id", id)
	return noContent(w)
}

// decodeTime reads a time given as an RFC 3339 string or as Unix seconds; zero when absent.
func decodeTime(field string, raw json.RawMessage) (time.Time, error) {
	if raw == nil || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, badRequest("%s: %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", field, s)
		}
		return t, nil
	}
	var n int64
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&n); err != nil || n <= 0 {
		return time.Time{}, badRequest("%s: want an RFC 3339 time or Unix seconds, got %s", field, raw)
	}
	return time.Unix(n, 0), nil
}
