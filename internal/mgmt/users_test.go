package mgmt

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/auth"
)

// basic sets the request's credentials.
func basic(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

// rabbitSHA256 is RabbitMQ's rabbit_password_hashing_sha256: base64(salt ‖ SHA-256(salt ‖ pw)).
func rabbitSHA256(password string) string {
	salt := []byte{1, 2, 3, 4}
	sum := sha256.Sum256(append(slices.Clone(salt), password...))
	return base64.StdEncoding.EncodeToString(append(salt, sum[:]...))
}

func testUsers(e *env) {
	t := e.t
	// Create with a password and tags as a comma-separated string: 201.
	e.must(201, "PUT", "/api/users/alice", uAdmin, map[string]any{"password": "secret", "tags": "monitoring, management"})
	var u userBody
	e.must(200, "GET", "/api/users/alice", uAdmin, nil).json(t, &u)
	if !slices.Equal(u.Tags, []string{"monitoring", "management"}) || u.HashingAlgorithm != auth.AlgBcrypt ||
		u.PasswordHash == nil || !strings.HasPrefix(*u.PasswordHash, "$2") {
		t.Fatalf("alice as the administrator sees her: %+v", u)
	}
	var whoami map[string]any
	e.must(200, "GET", "/api/whoami", "", nil, basic("alice", "secret")).json(t, &whoami)
	if whoami["name"] != "alice" {
		t.Fatalf("whoami: %v", whoami)
	}
	// Monitoring users do not see password hashes.
	var m map[string]any
	e.must(200, "GET", "/api/users/alice", uMon, nil).json(t, &m)
	if _, ok := m["password_hash"]; ok {
		t.Fatalf("a monitoring user sees a password hash: %v", m)
	}
	// Update: tags as an array, no password: 204, the password is kept.
	e.must(204, "PUT", "/api/users/alice", uAdmin, map[string]any{"tags": []string{"administrator"}})
	e.must(200, "GET", "/api/whoami", "", nil, basic("alice", "secret")).json(t, &whoami)
	if tags, _ := whoami["tags"].([]any); len(tags) != 1 || tags[0] != "administrator" {
		t.Fatalf("tags after the update: %v", whoami)
	}
	// A password hash without an algorithm is SHA-256, as LavinMQ assumes.
	e.must(201, "PUT", "/api/users/bob", uAdmin, map[string]any{"password_hash": rabbitSHA256("s3"), "tags": ""})
	got, _ := e.dir.User("bob")
	if got.HashAlgorithm != auth.AlgSHA256 {
		t.Fatalf("bob's algorithm %q, want %q", got.HashAlgorithm, auth.AlgSHA256)
	}
	e.must(403, "GET", "/api/whoami", "", nil, basic("bob", "s3")) // logged in, but no tag
	e.must(401, "GET", "/api/whoami", "", nil, basic("bob", "s4"))
	bh, _ := bcrypt.GenerateFromPassword([]byte("b"), bcrypt.MinCost)
	e.must(201, "PUT", "/api/users/carol", uAdmin, map[string]any{"password_hash": string(bh), "hashing_algorithm": "lavinmq_bcrypt", "tags": "monitoring"})
	e.must(200, "GET", "/api/whoami", "", nil, basic("carol", "b"))

	// Bad bodies: 400 naming the field, and nothing created.
	for _, c := range []struct{ body, field string }{
		{`{"password":`, "malformed JSON"},
		{`{"password": "a",}`, "malformed JSON"},
		{`[]`, "body"},
		{`{"password": 5}`, "password"},
		{`{"tags": 5}`, "tags"},
		{`{"tags": [1]}`, "tags"},
		{`{"password": ""}`, "password"},
		{`{"password": "` + strings.Repeat("p", 73) + `"}`, "password"},
		{`{"password_hash": "!!not base64!!"}`, "password_hash"},
		{`{"password_hash": "$2a$04$short"}`, "password_hash"},
		{`{"password_hash": "x", "hashing_algorithm": "rot13"}`, "hashing_algorithm"},
		{`{"password": "a", "password_hash": "b"}`, "password_hash"},
		{`{} {}`, "malformed JSON"},
	} {
		r := e.must(400, "PUT", "/api/users/dave", uAdmin, c.body)
		if b := r.apiErr(t); b.Error != "bad_request" || !strings.Contains(b.Reason, c.field) {
			t.Fatalf("body %s: %+v, want a reason naming %q", c.body, b, c.field)
		}
	}
	e.must(404, "GET", "/api/users/dave", uAdmin, nil)

	// Names are URL-decoded: "a/b c".
	e.must(201, "PUT", "/api/users/a%2Fb%20c", uAdmin, map[string]any{"password": "x"})
	if _, ok := e.dir.User("a/b c"); !ok {
		t.Fatal(`user "a/b c" not created`)
	}
	var list []userBody
	e.must(200, "GET", "/api/users", uAdmin, nil).json(t, &list)
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	for _, want := range []string{"a/b c", "alice", "bob", "carol", uAdmin} {
		if !slices.Contains(names, want) {
			t.Fatalf("user list %q lacks %q", names, want)
		}
	}
	e.must(204, "DELETE", "/api/users/alice", uAdmin, nil)
	e.must(404, "GET", "/api/users/alice", uAdmin, nil)
	e.must(404, "DELETE", "/api/users/alice", uAdmin, nil)
	e.must(401, "GET", "/api/whoami", "", nil, basic("alice", "secret"))
}
