package mgmt

import (
	"errors"
	"net/http"
	"time"

	"github.com/turnstilemq/turnstile/internal/revoke"
	"github.com/turnstilemq/turnstile/internal/tokens"
)

// revocationBody is one revocation as listed.
type revocationBody struct {
	ID      string `json:"id"`
	By      string `json:"by"` // "jti", "sub" or "kid"
	Value   string `json:"value"`
	Issuer  string `json:"iss,omitempty"`
	Created int64  `json:"created"` // milliseconds since the epoch
	Until   int64  `json:"until"`
}

func revocationOut(r revoke.Revocation) revocationBody {
	return revocationBody{ID: r.ID, By: string(r.By), Value: r.Value, Issuer: r.Issuer,
		Created: r.Created.UnixMilli(), Until: r.Until.UnixMilli()}
}

func (h *handler) needRevocations() error {
	if h.revs == nil {
		return notFound("revocations are not kept by this server")
	}
	return nil
}

// GET /api/oauth/revocations
func (h *handler) listRevocations(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	if err := h.needRevocations(); err != nil {
		return err
	}
	out := []revocationBody{}
	for _, r := range h.revs.List() {
		out = append(out, revocationOut(r))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /api/oauth/revocations: {"jti": "…"}, {"sub": "…", "iss": "…"} or {"kid": "…"}, with an
// optional "until" (seconds since the epoch; default: the token's own expiry when a live
// connection holds it, else now + [oauth] max_token_lifetime). Matching connections are closed
// with DISCONNECT 0x98 before the answer, and their wills suppressed. 201 with the revocation.
func (h *handler) addRevocation(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.needRevocations(); err != nil {
		return err
	}
	var b struct {
		JTI   string `json:"jti"`
		Sub   string `json:"sub"`
		Iss   string `json:"iss"`
		Kid   string `json:"kid"`
		Until int64  `json:"until"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	n := 0
	for _, v := range []string{b.JTI, b.Sub, b.Kid} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return badRequest("jti, sub, kid: give exactly one of them")
	}
	var until time.Time
	if b.Until > 0 {
		until = time.Unix(b.Until, 0)
	}
	var rev revoke.Revocation
	var err error
	switch {
	case b.JTI != "":
		if exp, ok := h.srv.CredentialExpiry(b.JTI); ok && until.IsZero() {
			until = exp // kept as long as the token itself could be used
		}
		rev, err = h.revs.Add(revoke.ByJTI, b.JTI, until)
	case b.Kid != "":
		rev, err = h.revs.Add(revoke.ByKeyID, b.Kid, until)
	default:
		rev, err = h.revs.AddSubject(b.Sub, b.Iss, until)
	}
	if err != nil {
		return badRequest("%v", err)
	}
	h.log.Info("credential revoked through the API", "user", c.name(), "by", string(rev.By), "value", rev.Value, "id", rev.ID)
	writeJSON(w, http.StatusCreated, revocationOut(rev))
	return nil
}

// DELETE /api/oauth/revocations/{id}: lifts a revocation (connections it closed stay closed).
func (h *handler) deleteRevocation(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.needRevocations(); err != nil {
		return err
	}
	id := r.PathValue("id")
	if !h.revs.Delete(id) {
		return notFound("no revocation %s", id)
	}
	h.log.Info("revocation lifted through the API", "user", c.name(), "id", id)
	return noContent(w)
}

func (h *handler) needTokens() error {
	if h.tokens == nil {
		return notFound("the token service is off ([tokens] port or tls_port)")
	}
	return nil
}

// GET /api/access-keys: every AccessKey, without secrets.
func (h *handler) listAccessKeys(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	if err := h.needTokens(); err != nil {
		return err
	}
	list := h.tokens.ListAccessKeys()
	if list == nil {
		list = []tokens.AccessKey{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// POST /api/access-keys: {"user": "…", "vhost": "…"} → 201 {"access_key_id", "access_key_secret",
// "user", "vhost"}. The secret is shown once, here, and never again.
func (h *handler) createAccessKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.needTokens(); err != nil {
		return err
	}
	var b struct {
		User  string `json:"user"`
		Vhost string `json:"vhost"`
	}
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if b.User == "" || b.Vhost == "" {
		return badRequest("user, vhost: both are required")
	}
	id, secret, err := h.tokens.CreateAccessKey(b.User, b.Vhost)
	switch {
	case errors.Is(err, tokens.ErrUnknownUser):
		return badRequest("user %s not found", b.User)
	case errors.Is(err, tokens.ErrNoVhostAccess):
		return badRequest("user %s has no permissions on vhost %s", b.User, b.Vhost)
	case errors.Is(err, tokens.ErrAccessKeysFull):
		return apiError(http.StatusConflict, "conflict", "too many AccessKeys")
	case err != nil:
		return err
	}
	h.log.Info("AccessKey created through the API", "user", c.name(), "access_key_id", id, "owner", b.User, "vhost", b.Vhost)
	writeJSON(w, http.StatusCreated, map[string]string{"access_key_id": id, "access_key_secret": secret, "user": b.User, "vhost": b.Vhost})
	return nil
}

// DELETE /api/access-keys/{id}: the key stops working at once; connections that logged in with
// it, or with its tokens, are closed with DISCONNECT 0x98.
func (h *handler) deleteAccessKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.needTokens(); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.tokens.DeleteAccessKey(id); errors.Is(err, tokens.ErrUnknownAccessKey) {
		return notFound("no AccessKey %s", id)
	} else if err != nil {
		return err
	}
	h.log.Info("AccessKey deleted through the API", "user", c.name(), "access_key_id", id)
	return noContent(w)
}
