package mgmt

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/turnstilemq/turnstile/internal/definitions"
)

// GET /api/definitions: users (with their password hashes), vhosts, permissions and topic
// permissions, as definitions.WriteJSON writes them. Administrators only.
func (h *handler) exportDefinitions(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	var buf bytes.Buffer
	if err := h.dir.Export().WriteJSON(&buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}

// POST /api/definitions: parse, validate and import; 204, or 400 listing every problem, or 413
// above 32 MiB.
func (h *handler) importDefinitions(w http.ResponseWriter, r *http.Request, c *caller) error {
	data, err := readBody(w, r, maxDefinitionsBody)
	if err != nil {
		return err
	}
	d, err := definitions.Parse(bytes.NewReader(data), maxDefinitionsBody)
	if errors.Is(err, definitions.ErrTooLarge) {
		return tooLarge(maxDefinitionsBody)
	}
	if err != nil {
		return manyErrors("invalid definitions", err)
	}
	if err := d.Validate(); err != nil {
		return manyErrors("invalid definitions", err)
	}
	if err := h.dir.Import(d); err != nil {
		return manyErrors("definitions not imported", err)
	}
	for _, warning := range d.Warnings() {
		h.log.Warn("definitions imported with a warning", "user", c.name(), "warning", warning)
	}
	h.log.Info("definitions imported through the API", "user", c.name(), "users", len(d.Users), "vhosts", len(d.Vhosts),
		"permissions", len(d.Permissions), "topic_permissions", len(d.TopicPermissions))
	return noContent(w)
}
