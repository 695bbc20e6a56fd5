package mgmt

import (
	"errors"
	"net/http"
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/directory"
)

// userBody is a user as listed; the password hash is shown to administrators only.
type userBody struct {
	Name             string   `json:"name"`
	Tags             []string `json:"tags"`
	HashingAlgorithm string   `json:"hashing_algorithm,omitempty"`
	PasswordHash     *string  `json:"password_hash,omitempty"`
}

func userOut(u auth.User, c *caller) userBody {
	b := userBody{Name: u.Name, Tags: tagStrings(u.Tags)}
	if c.admin() {
		b.HashingAlgorithm, b.PasswordHash = u.HashAlgorithm, &u.PasswordHash
	}
	return b
}

// GET /api/users
func (h *handler) listUsers(w http.ResponseWriter, _ *http.Request, c *caller) error {
	out := []userBody{}
	for _, u := range h.dir.UserList() {
		out = append(out, userOut(u, c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /api/users/{name}
func (h *handler) getUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, ok := h.dir.User(r.PathValue("name"))
	if !ok {
		return notFound("user %s not found", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, userOut(u, c))
	return nil
}

// putUserBody is the body of PUT /api/users/{name}: a password, or a password hash with its
// algorithm (SHA-256 when missing, as LavinMQ assumes), and tags. For an existing user, a field
// left out keeps its value; a new user without either has no password and cannot log in with one.
type putUserBody struct {
	Password         *string  `json:"password"`
	PasswordHash     *string  `json:"password_hash"`
	HashingAlgorithm string   `json:"hashing_algorithm"`
	Tags             *tagList `json:"tags"`
}

// PUT /api/users/{name}: 201 created, 204 updated.
func (h *handler) putUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	if err := checkName("user", name); err != nil {
		return err
	}
	var b putUserBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if b.Password != nil && b.PasswordHash != nil {
		return badRequest("password, password_hash: give one of them, not both")
	}
	u, exists := h.dir.User(name)
	if !exists {
		u = auth.User{Name: name}
	}
	if b.PasswordHash != nil {
		alg, err := auth.ImportHash(b.HashingAlgorithm, *b.PasswordHash, auth.AlgSHA256)
		if err != nil {
			return badRequest("%s", strings.TrimPrefix(err.Error(), "auth: "))
		}
		u.HashAlgorithm, u.PasswordHash = alg, *b.PasswordHash
	}
	if b.Tags != nil {
		u.Tags = toTags(*b.Tags)
	}
	var err error
	if b.Password != nil { // hashed by the directory, which keeps its verifier too
		_, err = h.dir.PutUserWithPassword(u, []byte(*b.Password))
	} else {
		_, err = h.dir.PutUser(u)
	}
	if errors.Is(err, directory.ErrBadPassword) {
		return badRequest("%s", err.Error())
	}
	if err != nil {
		return changeErr(err)
	}
	h.log.Info("user saved", "user", c.name(), "name", name, "created", !exists, "tags", strings.Join(tagStrings(u.Tags), ","))
	if !exists {
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	return noContent(w)
}

// DELETE /api/users/{name}
func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("name")
	ok, err := h.dir.DeleteUser(name)
	if err != nil {
		return changeErr(err)
	}
	if !ok {
		return notFound("user %s not found", name)
	}
	h.log.Info("user deleted", "user", c.name(), "name", name)
	return noContent(w)
}
