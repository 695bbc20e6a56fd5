package mgmt

import (
	"bytes"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/definitions"
)

func testDefinitions(e *env) {
	t := e.t
	r := e.must(200, "GET", "/api/definitions", uAdmin, nil)
	d, err := definitions.Parse(bytes.NewReader(r.body), 0)
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, r.body)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("export does not validate: %v", err)
	}
	hasUser := false
	for _, u := range d.Users {
		hasUser = hasUser || (u.Name == uAdmin && u.PasswordHash != "")
	}
	if !hasUser || len(d.Vhosts) < 2 {
		t.Fatalf("export: %+v", d)
	}

	bh, _ := bcrypt.GenerateFromPassword([]byte("imp-pw"), bcrypt.MinCost)
	doc := `{"rabbit_version": "3.13.0",
	 "users": [{"name": "imp", "password_hash": "` + string(bh) + `", "hashing_algorithm": "lavinmq_bcrypt", "tags": "management"}],
	 "vhosts": [{"name": "impv"}],
	 "permissions": [{"user": "imp", "vhost": "impv", "configure": ".*", "write": ".*", "read": ".*"}],
	 "topic_permissions": [{"user": "imp", "vhost": "impv", "exchange": "mqtt.default", "write": "^x/", "read": ".*"}],
	 "queues": []}`
	e.must(204, "POST", "/api/definitions", uAdmin, doc)
	if !e.dir.HasVhost("impv") {
		t.Fatal("imported vhost missing")
	}
	e.must(200, "GET", "/api/vhosts/impv", "imp", nil) // the imported user logs in and sees its vhost
	e.must(403, "GET", "/api/vhosts/%2F", "imp", nil)

	// Every problem is reported at once.
	bad := `{"users": [{"name": ""}, {"name": "u1"}, {"name": "u1"}],
	 "vhosts": [{"name": "v1"}],
	 "permissions": [{"user": "nouser", "vhost": "novhost", "configure": "(", "write": ".*", "read": ".*"}]}`
	r = e.must(400, "POST", "/api/definitions", uAdmin, bad)
	b := r.apiErr(t)
	if len(b.Errors) < 5 {
		t.Fatalf("validation errors: %+v, want every problem listed", b)
	}
	for _, want := range []string{"users[0].name", "users[2].name", "permissions[0].user", "permissions[0].vhost", "permissions[0].configure"} {
		if !strings.Contains(b.Reason, want) {
			t.Fatalf("reason %q does not name %s", b.Reason, want)
		}
	}
	if e.dir.HasVhost("v1") {
		t.Fatal("a refused import changed something")
	}
	// Shape errors, all at once.
	r = e.must(400, "POST", "/api/definitions", uAdmin, `{"users": [{"name": 1, "tags": 5}], "vhosts": {}}`)
	if b := r.apiErr(t); len(b.Errors) != 3 {
		t.Fatalf("shape errors: %+v", b)
	}
	r = e.must(400, "POST", "/api/definitions", uAdmin, "{\n\"users\": [,]}")
	if b := r.apiErr(t); !strings.Contains(b.Reason, "line 2") {
		t.Fatalf("syntax error: %+v", b)
	}
	// A hash that cannot be read is refused before anything changes.
	r = e.must(400, "POST", "/api/definitions", uAdmin, `{"users": [{"name": "h", "password_hash": "!!!",
	 "hashing_algorithm": "rabbit_password_hashing_sha256"}], "vhosts": [{"name": "hv"}]}`)
	if b := r.apiErr(t); !strings.Contains(b.Reason, "password_hash") {
		t.Fatalf("bad hash: %+v", b)
	}
	if _, ok := e.dir.User("h"); ok || e.dir.HasVhost("hv") {
		t.Fatal("an import with a bad hash changed something")
	}
}
