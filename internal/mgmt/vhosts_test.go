package mgmt

import (
	"strings"

	"github.com/turnstilemq/turnstile/internal/acl"
)

func testVhosts(e *env) {
	t := e.t
	// "a/b" is one path segment, a%2Fb; "/" is %2F.
	e.must(201, "PUT", "/api/vhosts/a%2Fb", uAdmin, nil)
	if !e.dir.HasVhost("a/b") {
		t.Fatal(`vhost "a/b" not created`)
	}
	e.must(204, "PUT", "/api/vhosts/a%2Fb", uAdmin, map[string]string{"description": "ignored"})
	var v vhostBody
	e.must(200, "GET", "/api/vhosts/a%2Fb", uAdmin, nil).json(t, &v)
	if v.Name != "a/b" || v.Tags == nil {
		t.Fatalf("GET /api/vhosts/a%%2Fb: %+v", v)
	}
	e.must(200, "GET", "/api/vhosts/%2F", uAdmin, nil).json(t, &v)
	if v.Name != "/" {
		t.Fatalf("GET /api/vhosts/%%2F: %+v", v)
	}
	var list []vhostBody
	e.must(200, "GET", "/api/vhosts", uAdmin, nil).json(t, &list)
	found := false
	for _, v := range list {
		found = found || v.Name == "a/b"
	}
	if !found {
		t.Fatalf("vhost list %+v lacks a/b", list)
	}
	var conns []connectionBody
	e.must(200, "GET", "/api/vhosts/a%2Fb/connections", uAdmin, nil).json(t, &conns)
	if len(conns) != 0 {
		t.Fatalf("connections of a new vhost: %+v", conns)
	}
	e.must(404, "GET", "/api/vhosts/nope/connections", uAdmin, nil)

	for _, c := range []struct{ path, body, field string }{
		{"/api/vhosts/x:y", "", "':'"},
		{"/api/vhosts/x%01", "", "control"},
		{"/api/vhosts/ok", `{"description": 5}`, "description"},
		{"/api/vhosts/ok", `{`, "malformed JSON"},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		r := e.must(400, "PUT", c.path, uAdmin, body)
		if b := r.apiErr(t); !strings.Contains(b.Reason, c.field) {
			t.Fatalf("PUT %s %s: %+v, want a reason naming %q", c.path, c.body, b, c.field)
		}
	}
	e.must(204, "DELETE", "/api/vhosts/a%2Fb", uAdmin, nil)
	e.must(404, "GET", "/api/vhosts/a%2Fb", uAdmin, nil)
	e.must(404, "DELETE", "/api/vhosts/a%2Fb", uAdmin, nil)
}

func testPermissions(e *env) {
	t := e.t
	if _, err := e.dir.AddVhost("p/q"); err != nil {
		t.Fatal(err)
	}
	e.addUser("pu")
	perm := map[string]string{"configure": "^c", "write": "^w", "read": "^r"}
	e.must(201, "PUT", "/api/permissions/p%2Fq/pu", uAdmin, perm)
	e.must(204, "PUT", "/api/permissions/p%2Fq/pu", uAdmin, perm)
	var p acl.Permission
	e.must(200, "GET", "/api/permissions/p%2Fq/pu", uAdmin, nil).json(t, &p)
	if p != (acl.Permission{User: "pu", Vhost: "p/q", Configure: "^c", Write: "^w", Read: "^r"}) {
		t.Fatalf("permission %+v", p)
	}
	var list []acl.Permission
	e.must(200, "GET", "/api/permissions", uMon, nil).json(t, &list)
	found := false
	for _, q := range list {
		found = found || q == p
	}
	if !found {
		t.Fatalf("permission list %+v lacks %+v", list, p)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/api/permissions/p%2Fq/pu", `{"configure": ".*", "write": "(", "read": ".*"}`, "write"},
		{"/api/permissions/p%2Fq/pu", `{"configure": "[", "write": "", "read": ""}`, "configure"},
		{"/api/permissions/p%2Fq/pu", `{"configure": ".*", "write": ".*"}`, "read: missing"},
		{"/api/permissions/p%2Fq/pu", `{"configure": 1, "write": ".*", "read": ".*"}`, "configure"},
		{"/api/permissions/p%2Fq/pu", `not json`, "malformed JSON"},
		{"/api/permissions/nope/pu", `{"configure": "", "write": "", "read": ""}`, "vhost nope"},
		{"/api/permissions/p%2Fq/ghost", `{"configure": "", "write": "", "read": ""}`, "user ghost"},
	} {
		r := e.must(400, "PUT", c.path, uAdmin, c.body)
		if b := r.apiErr(t); !strings.Contains(b.Reason, c.field) {
			t.Fatalf("PUT %s %s: %+v, want a reason naming %q", c.path, c.body, b, c.field)
		}
	}
	e.must(200, "GET", "/api/permissions/p%2Fq/pu", uAdmin, nil).json(t, &p)
	if p.Write != "^w" {
		t.Fatalf("a refused PUT changed the permission: %+v", p)
	}
	e.must(204, "DELETE", "/api/permissions/p%2Fq/pu", uAdmin, nil)
	e.must(404, "GET", "/api/permissions/p%2Fq/pu", uAdmin, nil)
	e.must(404, "DELETE", "/api/permissions/p%2Fq/pu", uAdmin, nil)
}

func testTopicPermissions(e *env) {
	t := e.t
	if _, err := e.dir.AddVhost("t/p"); err != nil {
		t.Fatal(err)
	}
	e.addUser("tu")
	// exchange defaults to mqtt.default
	e.must(201, "PUT", "/api/topic-permissions/t%2Fp/tu", uAdmin, map[string]string{"write": "^devices/{client_id}/", "read": ".*"})
	e.must(204, "PUT", "/api/topic-permissions/t%2Fp/tu", uAdmin, map[string]string{"exchange": "mqtt.default", "write": "^d/", "read": ".*"})
	e.must(201, "PUT", "/api/topic-permissions/t%2Fp/tu", uAdmin, map[string]string{"exchange": "amq.topic", "write": "", "read": ""})
	var list []acl.TopicPermission
	e.must(200, "GET", "/api/topic-permissions/t%2Fp/tu", uAdmin, nil).json(t, &list)
	if len(list) != 2 || list[0].Exchange != "amq.topic" || list[1] != (acl.TopicPermission{User: "tu", Vhost: "t/p",
		Exchange: "mqtt.default", Write: "^d/", Read: ".*"}) {
		t.Fatalf("topic permissions %+v", list)
	}
	e.must(200, "GET", "/api/topic-permissions", uAdmin, nil).json(t, &list)
	n := 0
	for _, p := range list {
		if p.User == "tu" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("topic permission list %+v: want tu's two", list)
	}
	for _, c := range []struct{ body, field string }{
		{`{"write": ".*", "read": "["}`, "read"},
		{`{"write": "(", "read": ".*"}`, "write"},
		{`{"exchange": "", "write": ".*", "read": ".*"}`, "exchange"},
		{`{"read": ".*"}`, "write: missing"},
		{`{"exchange": 7, "write": ".*", "read": ".*"}`, "exchange"},
	} {
		r := e.must(400, "PUT", "/api/topic-permissions/t%2Fp/tu", uAdmin, c.body)
		if b := r.apiErr(t); !strings.Contains(b.Reason, c.field) {
			t.Fatalf("PUT %s: %+v, want a reason naming %q", c.body, b, c.field)
		}
	}
	e.must(400, "PUT", "/api/topic-permissions/nope/tu", uAdmin, map[string]string{"write": "", "read": ""})
	e.must(204, "DELETE", "/api/topic-permissions/t%2Fp/tu?exchange=amq.topic", uAdmin, nil)
	e.must(200, "GET", "/api/topic-permissions/t%2Fp/tu", uAdmin, nil).json(t, &list)
	if len(list) != 1 || list[0].Exchange != "mqtt.default" {
		t.Fatalf("after deleting amq.topic: %+v", list)
	}
	e.must(204, "DELETE", "/api/topic-permissions/t%2Fp/tu", uAdmin, nil)
	e.must(404, "GET", "/api/topic-permissions/t%2Fp/tu", uAdmin, nil)
	e.must(404, "DELETE", "/api/topic-permissions/t%2Fp/tu", uAdmin, nil)
}
