package mgmt

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
)

// TestAccessByTag checks every endpoint against every kind of caller: no credentials and bad
// credentials get 401 with WWW-Authenticate; a valid user without the tag gets 403;
// administrator may do everything, monitoring may read everything but the definitions (they
// carry password hashes), management may read its own vhosts only.
func testAccessByTag(e *env) {
	t := e.t
	type call struct {
		method, path string
		body         any
		// status by caller; a caller left out gets the row's default
		admin, mon, mgr, plain int
	}
	const ok, created, none, denied = 200, 201, 204, 403
	perm := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	tperm := map[string]string{"write": ".*", "read": ".*"}
	calls := []call{
		{"GET", "/api/overview", nil, ok, ok, ok, denied},
		{"GET", "/api/whoami", nil, ok, ok, ok, denied},
		{"GET", "/api/users", nil, ok, ok, denied, denied},
		{"GET", "/api/users/" + uPlain, nil, ok, ok, denied, denied},
		{"PUT", "/api/users/newbie", map[string]string{"password": "x", "tags": ""}, created, denied, denied, denied},
		{"DELETE", "/api/users/newbie", nil, none, denied, denied, denied},
		{"GET", "/api/vhosts", nil, ok, ok, ok, denied},
		{"GET", "/api/vhosts/%2F", nil, ok, ok, denied, denied},
		{"GET", "/api/vhosts/tenant", nil, ok, ok, ok, denied},
		{"PUT", "/api/vhosts/v2", nil, created, denied, denied, denied},
		{"GET", "/api/vhosts/%2F/connections", nil, ok, ok, denied, denied},
		{"GET", "/api/vhosts/tenant/connections", nil, ok, ok, ok, denied},
		{"GET", "/api/permissions", nil, ok, ok, ok, denied},
		{"GET", "/api/permissions/%2F/" + uPlain, nil, ok, ok, denied, denied},
		{"GET", "/api/permissions/tenant/" + uMgr, nil, ok, ok, ok, denied},
		{"PUT", "/api/permissions/v2/" + uPlain, perm, created, denied, denied, denied},
		{"DELETE", "/api/permissions/v2/" + uPlain, nil, none, denied, denied, denied},
		{"GET", "/api/topic-permissions", nil, ok, ok, ok, denied},
		{"PUT", "/api/topic-permissions/v2/" + uPlain, tperm, created, denied, denied, denied},
		{"GET", "/api/topic-permissions/v2/" + uPlain, nil, ok, ok, denied, denied},
		{"DELETE", "/api/topic-permissions/v2/" + uPlain, nil, none, denied, denied, denied},
		{"DELETE", "/api/vhosts/v2", nil, none, denied, denied, denied},
		{"GET", "/api/connections", nil, ok, ok, ok, denied},
		{"DELETE", "/api/connections/nope", nil, 404, denied, denied, denied},
		{"GET", "/api/sessions/%2F", nil, ok, ok, denied, denied},
		{"GET", "/api/sessions/tenant", nil, ok, ok, ok, denied},
		{"DELETE", "/api/sessions/%2F/nope", nil, 404, denied, denied, denied},
		{"GET", "/api/retained/%2F", nil, ok, ok, denied, denied},
		{"GET", "/api/retained/tenant", nil, ok, ok, ok, denied},
		{"DELETE", "/api/retained/%2F/nope", nil, 404, denied, denied, denied},
		{"GET", "/api/definitions", nil, ok, denied, denied, denied},
		{"POST", "/api/definitions", map[string]any{"vhosts": []any{}}, none, denied, denied, denied},
	}
	for _, c := range calls {
		// Unauthenticated and badly authenticated calls first: they must change nothing.
		for _, user := range []string{uNone, uBad, uGhost} {
			r := e.do(c.method, c.path, user, c.body)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s %s as %q: status %d, want 401; body %s", c.method, c.path, user, r.status, r.body)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("%s %s as %q: 401 without WWW-Authenticate: Basic", c.method, c.path, user)
			}
			if b := r.apiErr(t); b.Error != "not_authorized" {
				t.Fatalf("401 error %q", b.Error)
			}
		}
		for _, u := range []struct {
			name string
			want int
		}{{uPlain, c.plain}, {uMgr, c.mgr}, {uMon, c.mon}, {uAdmin, c.admin}} {
			r := e.do(c.method, c.path, u.name, c.body)
			if r.status != u.want {
				t.Fatalf("%s %s as %s: status %d, want %d; body %s", c.method, c.path, u.name, r.status, u.want, r.body)
			}
			if r.status == denied {
				if b := r.apiErr(t); b.Error != "access_refused" {
					t.Fatalf("403 error %q", b.Error)
				}
			}
		}
	}
}

// TestManagementSeesOwnVhosts: lists are filtered to the vhosts a management user has
// permissions on; a vhost it may not see is 403 whether or not it exists.
func testManagementSeesOwnVhosts(e *env) {
	t := e.t
	var vhosts []vhostBody
	e.must(200, "GET", "/api/vhosts", uMgr, nil).json(t, &vhosts)
	if len(vhosts) != 1 || vhosts[0].Name != "tenant" {
		t.Fatalf("management user's vhosts: %+v, want tenant only", vhosts)
	}
	e.must(200, "GET", "/api/vhosts", uMon, nil).json(t, &vhosts)
	names := map[string]bool{}
	for _, v := range vhosts {
		names[v.Name] = true
	}
	if !names["/"] || !names["tenant"] {
		t.Fatalf("monitoring user's vhosts: %+v, want / and tenant among them", vhosts)
	}
	var perms []map[string]string
	e.must(200, "GET", "/api/permissions", uMgr, nil).json(t, &perms)
	if len(perms) != 1 || perms[0]["vhost"] != "tenant" {
		t.Fatalf("management user's permissions: %+v", perms)
	}

	e.mustConnect(&paho.Connect{ClientID: "in-root", CleanStart: true})
	var conns []connectionBody
	e.must(200, "GET", "/api/connections", uAdmin, nil).json(t, &conns)
	if !slices.ContainsFunc(conns, func(c connectionBody) bool { return c.ClientID == "in-root" }) {
		t.Fatalf("admin does not see the connection: %+v", conns)
	}
	e.must(200, "GET", "/api/connections", uMgr, nil).json(t, &conns)
	if len(conns) != 0 {
		t.Fatalf("management user sees a connection in a vhost it has no access to: %+v", conns)
	}
	e.must(403, "GET", "/api/vhosts/nope", uMgr, nil)
	e.must(404, "GET", "/api/vhosts/nope", uAdmin, nil)
	e.must(403, "GET", "/api/sessions/nope", uMgr, nil)

	var o overviewBody
	e.must(200, "GET", "/api/overview", uMgr, nil).json(t, &o)
	if o.ObjectTotals.Connections != 0 || o.ObjectTotals.Vhosts != 1 || o.Connects != nil || o.ObjectTotals.Users != nil {
		t.Fatalf("management user's overview: %+v", o)
	}
}

func testHealth(e *env) {
	t := e.t
	e.must(200, "GET", "/api/health", uNone, nil)
	r := e.must(503, "GET", "/api/health/ready", uNone, nil)
	if b := r.apiErr(t); b.Error != "service_unavailable" {
		t.Fatalf("not ready: %+v", b)
	}
}

// testReady runs once the broker has its listener.
func testReady(e *env) {
	e.must(200, "GET", "/api/health/ready", uNone, nil)
	e.must(200, "GET", "/api/health", uNone, nil)
}

// testNotReadyAfterClose runs last: it closes the broker.
func testNotReadyAfterClose(e *env) {
	if err := e.srv.Close(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.must(503, "GET", "/api/health/ready", uNone, nil)
	e.must(200, "GET", "/api/health", uNone, nil)
}

func testNotFoundAndMethodNotAllowed(e *env) {
	t := e.t
	for _, p := range []string{"/nope", "/api", "/api/users/", "/api/users/a/b", "/api/vhosts/%2F/nope", "/api/sessions"} {
		r := e.must(404, "GET", p, uAdmin, nil)
		if b := r.apiErr(t); b.Error != "not_found" {
			t.Fatalf("%s: %+v", p, b)
		}
	}
	r := e.must(405, "POST", "/api/users/x", uAdmin, "{}")
	if b := r.apiErr(t); b.Error != "method_not_allowed" {
		t.Fatalf("405 body %+v", b)
	}
	if got := r.header.Get("Allow"); got != "DELETE, GET, PUT" {
		t.Fatalf("Allow %q", got)
	}
	e.must(405, "DELETE", "/api/overview", uAdmin, nil)
	e.must(200, "HEAD", "/api/overview", uAdmin, nil)
}

// TestHostAndOrigin: the Host header must name the bind address or loopback (DNS rebinding);
// a state-changing request must come from no Origin or the same origin.
func testHostAndOrigin(e *env) {
	t := e.t
	host := func(h string) func(*http.Request) { return func(r *http.Request) { r.Host = h } }
	header := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }

	for _, h := range []string{"evil.example", "evil.example:15672", "10.1.2.3"} {
		r := e.must(403, "GET", "/api/overview", uAdmin, nil, host(h))
		if b := r.apiErr(t); !strings.Contains(b.Reason, "host") {
			t.Fatalf("host refusal reason %q", b.Reason)
		}
		e.must(403, "GET", "/api/health", uNone, nil, host(h))
	}
	for _, h := range []string{"localhost:15672", "LOCALHOST", "[::1]:80", "127.0.0.1"} {
		e.must(200, "GET", "/api/overview", uAdmin, nil, host(h))
	}

	body := map[string]string{"password": "p"}
	e.must(403, "PUT", "/api/users/x", uAdmin, body, header("Origin", "http://evil.example"))
	e.must(403, "PUT", "/api/users/x", uAdmin, body, header("Origin", "null"))
	e.must(403, "DELETE", "/api/vhosts/tenant", uAdmin, nil, header("Sec-Fetch-Site", "cross-site"))
	if _, ok := e.dir.User("x"); ok || !e.dir.HasVhost("tenant") {
		t.Fatal("a refused cross-origin request changed something")
	}
	// Reads are not state-changing; same-origin writes pass.
	e.must(200, "GET", "/api/overview", uAdmin, nil, header("Origin", "http://evil.example"))
	e.must(201, "PUT", "/api/users/x", uAdmin, body, header("Origin", e.ts.URL))
	e.must(204, "PUT", "/api/users/x", uAdmin, body, header("Sec-Fetch-Site", "same-origin"))

	// Bound to every address: TestHostAllowList (hosts_test.go).
	// Bound to one address, that address is accepted.
	one := e.handlerWith(func(c *config.Config) { c.Mgmt.Bind = "10.1.2.3" })
	one.must(200, "GET", "/api/overview", uAdmin, nil, host("10.1.2.3:15672"))
	one.must(403, "GET", "/api/overview", uAdmin, nil, host("10.1.2.4:15672"))
}

func testBodyLimits(e *env) {
	t := e.t
	big := `{"password":"` + strings.Repeat("x", maxBody) + `"}`
	r := e.must(413, "PUT", "/api/users/big", uAdmin, big)
	if b := r.apiErr(t); b.Error != "request_entity_too_large" {
		t.Fatalf("413 body %+v", b)
	}
	// Without Content-Length (chunked), the limit still holds.
	e.must(413, "PUT", "/api/users/big", uAdmin, big, func(r *http.Request) { r.ContentLength = -1 })
	e.must(413, "POST", "/api/definitions", uAdmin, strings.Repeat(" ", maxDefinitionsBody+1))
	if _, ok := e.dir.User("big"); ok {
		t.Fatal("an oversized body created a user")
	}
}

func testLoginRules(e *env) {
	t := e.t
	e.addUser("dflt", auth.TagAdministrator)
	e.addUser("lr", auth.TagAdministrator)
	e = e.handlerWith(func(c *config.Config) { c.Main.DefaultUser = "dflt"; c.Main.DefaultUserOnlyLoopback = true })
	// The default user may log in from loopback only, as over MQTT: the same chain decides.
	for _, remote := range []string{"127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"} {
		if err := e.login("dflt", pw("dflt"), remote); err != nil {
			t.Fatalf("default user from %s: %v", remote, err)
		}
	}
	if err := e.login("dflt", pw("dflt"), "10.0.0.7:5000"); err == nil || err.Status != 401 {
		t.Fatalf("default user from 10.0.0.7: %v, want 401", err)
	}
	// Unknown user, wrong password, user without a password, empty password: one answer.
	e.dir.PutUser(auth.User{Name: "nopass", Tags: []auth.Tag{auth.TagAdministrator}})
	var reasons []string
	for _, c := range [][2]string{{uGhost, "x"}, {"lr", "wrong"}, {"nopass", "x"}, {"lr", ""}} {
		err := e.login(c[0], c[1], "10.0.0.8:1")
		if err == nil {
			t.Fatalf("login %q/%q succeeded", c[0], c[1])
		}
		reasons = append(reasons, err.Error())
	}
	for _, r := range reasons[1:] {
		if r != reasons[0] {
			t.Fatalf("login failures differ: %q", reasons)
		}
	}
	// A cached login stops working once the password changes.
	if err := e.login("lr", pw("lr"), "10.0.0.9:1"); err != nil {
		t.Fatal(err)
	}
	e.must(204, "PUT", "/api/users/lr", uAdmin, map[string]string{"password": "new"})
	if err := e.login("lr", pw("lr"), "10.0.0.9:1"); err == nil {
		t.Fatal("the old password still works after a change")
	}
	if err := e.login("lr", "new", "10.0.0.9:1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// Tags are read at every request: losing administrator takes effect at once.
	e.must(200, "GET", "/api/definitions", "dflt", nil)
	e.must(204, "PUT", "/api/users/dflt", uAdmin, map[string]any{"tags": []string{"monitoring"}})
	e.must(403, "GET", "/api/definitions", "dflt", nil)
	e.must(200, "GET", "/api/users", "dflt", nil)
}

// login authenticates user from remote through the API's authorize, as a request from that
// address would be, and returns the API error, nil when the login succeeded.
func (e *env) login(user, password, remote string) *Error {
	r := httptest.NewRequest("GET", "/api/overview", nil)
	r.RemoteAddr = remote
	r.SetBasicAuth(user, password)
	if _, err := e.h.authorize(r, reader); err != nil {
		return err.(*Error)
	}
	return nil
}
