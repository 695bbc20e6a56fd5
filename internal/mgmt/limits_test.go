package mgmt

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/config"
)

// TestHostCheck: the rules of the Host header check (docs/security.md, "The management API's
// Host allow-list").
func TestHostCheck(t *testing.T) {
	hn, _ := os.Hostname()
	tests := []struct {
		bind    string
		allowed []string
		ok, bad []string
	}{
		{"0.0.0.0", nil,
			[]string{"127.0.0.1:15672", "[::1]:15672", "10.1.2.3", "[fe80::1]:80", "localhost", "LOCALHOST:15672", hn},
			[]string{"evil.example", "mq.example.com:15672", "localhost.evil.example", "", "127.0.0.1.nip.io"}},
		{"::", []string{"mq.example.com", "*.corp.example", "Upper.Example."},
			[]string{"mq.example.com:15672", "a.corp.example", "x.y.corp.example", "upper.example", "192.0.2.1"},
			[]string{"corp.example", "evilcorp.example", "mq.example.com.evil"}},
		{"10.1.2.3", []string{"mq.example.com"},
			[]string{"10.1.2.3:15672", "localhost", "127.0.0.1", "[::1]", "mq.example.com"},
			[]string{"10.1.2.4", "evil.example", hn + ".evil"}},
		{"127.0.0.1", []string{"*"}, []string{"anything.example", "10.9.9.9"}, nil},
	}
	for _, tt := range tests {
		hc := newHostCheck(tt.bind, tt.allowed)
		for _, h := range tt.ok {
			if !hc.allowed(h) {
				t.Errorf("bind %s, allowed %q: Host %q refused", tt.bind, tt.allowed, h)
			}
		}
		for _, h := range tt.bad {
			if hc.allowed(h) {
				t.Errorf("bind %s, allowed %q: Host %q allowed", tt.bind, tt.allowed, h)
			}
		}
	}
}

// testHostAllowList: bound to every address, a DNS-rebinding request (a page of another site
// whose name now points at this machine) is refused before anything else, credentials or not;
// the names of allowed_hosts pass.
func testHostAllowList(e *env) {
	host := func(h string) func(*http.Request) { return func(r *http.Request) { r.Host = h } }
	any := e.handlerWith(func(c *config.Config) { c.Mgmt.Bind = "0.0.0.0" })
	for _, path := range []string{"/api/health", "/api/overview", "/metrics"} {
		r := any.must(403, "GET", path, uAdmin, nil, host("rebind.attacker.example:15672"))
		if b := r.apiErr(e.t); !strings.Contains(b.Reason, "allowed_hosts") {
			e.t.Fatalf("refusal reason %q", b.Reason)
		}
	}
	any.must(200, "GET", "/api/overview", uAdmin, nil, host("192.168.1.10:15672"))
	any.must(200, "GET", "/api/overview", uAdmin, nil, host("localhost:15672"))
	named := e.handlerWith(func(c *config.Config) {
		c.Mgmt.Bind = "0.0.0.0"
		c.Mgmt.AllowedHosts = "mq.example.com, *.corp.example"
	})
	named.must(200, "GET", "/api/overview", uAdmin, nil, host("mq.example.com:15672"))
	named.must(200, "GET", "/api/overview", uAdmin, nil, host("api.corp.example"))
	named.must(403, "GET", "/api/overview", uAdmin, nil, host("rebind.attacker.example"))
}

// testLoginsAnswerAlike: before authentication succeeds the API answers an unknown user, a
// wrong password and a user without the needed tag (with a wrong password) the same way: same
// status, same body, same challenge. Only a correct password reveals the missing tag (403).
func testLoginsAnswerAlike(e *env) {
	t := e.t
	wrong := func(user string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, "not-the-password") }
	}
	var first response
	for i, user := range []string{"no-such-user", uAdmin, uPlain} {
		r := e.do("GET", "/api/users", uNone, nil, wrong(user))
		if r.status != 401 {
			t.Fatalf("%s with a wrong password: %d", user, r.status)
		}
		if i == 0 {
			first = r
			continue
		}
		if string(r.body) != string(first.body) || r.header.Get("WWW-Authenticate") != first.header.Get("WWW-Authenticate") ||
			r.header.Get("Content-Type") != first.header.Get("Content-Type") {
			t.Fatalf("%s answered differently from an unknown user:\n%d %v %s\n%d %v %s", user, r.status, r.header, r.body,
				first.status, first.header, first.body)
		}
	}
	e.must(403, "GET", "/api/users", uPlain, nil) // the right password: now the tag is checked
}

// mqttLogin connects a v5 client as user and returns its CONNACK reason code (0 and the client
// on success).
func (e *env) mqttLogin(id, user string) (byte, *mqttClient) {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.mqtt, waitTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	m := &mqttClient{t: e.t, conn: conn, msgs: make(chan *paho.Publish, 1), discs: make(chan *paho.Disconnect, 1)}
	m.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnServerDisconnect: func(d *paho.Disconnect) {
		select {
		case m.discs <- d:
		default:
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := m.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: user, UsernameFlag: true,
		Password: []byte(pw(user)), PasswordFlag: true})
	switch {
	case ack == nil:
		e.t.Fatalf("connect %s: no CONNACK: %v", id, err)
	case ack.ReasonCode != 0:
		return ack.ReasonCode, nil
	}
	return 0, m
}

func testVhostLimits(e *env) {
	t := e.t
	const path = "/api/vhost-limits/%2F/max-connections"
	e.must(403, "PUT", path, uMon, map[string]any{"value": 1})
	e.must(403, "PUT", path, uMgr, map[string]any{"value": 1})
	e.must(204, "PUT", path, uAdmin, map[string]any{"value": 1})
	e.must(204, "PUT", "/api/vhost-limits/tenant/max-retained", uAdmin, map[string]any{"value": -1})
	for _, bad := range []struct {
		path string
		body any
		want string
	}{
		{"/api/vhost-limits/%2F/max-queues", map[string]any{"value": 1}, "unknown limit"},
		{path, map[string]any{"value": "1"}, "value: want an integer"},
		{path, map[string]any{"value": 1.5}, "value: want an integer"},
		{path, map[string]any{"value": nil}, "value: missing"},
		{path, map[string]any{}, "value: missing"},
	} {
		r := e.must(400, "PUT", bad.path, uAdmin, bad.body)
		if b := r.apiErr(t); !strings.Contains(b.Reason, bad.want) {
			t.Fatalf("PUT %s %v: reason %q, want %q", bad.path, bad.body, b.Reason, bad.want)
		}
	}
	e.must(404, "PUT", "/api/vhost-limits/nope/max-connections", uAdmin, map[string]any{"value": 1})

	var list []vhostLimitsBody
	e.must(200, "GET", "/api/vhost-limits", uAdmin, nil).json(t, &list)
	if len(list) != 2 || list[0].Vhost != "/" || list[0].Value["max-connections"] != 1 || list[1].Vhost != "tenant" {
		t.Fatalf("GET /api/vhost-limits %+v", list)
	}
	e.must(200, "GET", "/api/vhost-limits", uMgr, nil).json(t, &list) // management: its own vhosts only
	if len(list) != 1 || list[0].Vhost != "tenant" {
		t.Fatalf("management sees %+v", list)
	}
	e.must(403, "GET", "/api/vhost-limits/%2F", uMgr, nil)
	var one limitValue
	e.must(200, "GET", path, uAdmin, nil).json(t, &one)
	if one.Value != 1 {
		t.Fatalf("GET %s: %+v", path, one)
	}
	if r := e.must(200, "GET", "/api/definitions", uAdmin, nil); !strings.Contains(string(r.body), `"max-connections": 1`) {
		t.Fatalf("the export lacks the limit:\n%s", r.body)
	}

	// In force at once: one connection to "/", the second refused with 0x97 Quota exceeded.
	code, first := e.mqttLogin("vl-1", uPlain)
	if code != 0 {
		t.Fatalf("first connection: %#x", code)
	}
	if code, _ := e.mqttLogin("vl-2", uPlain); code != 0x97 {
		t.Fatalf("second connection: CONNACK %#x, want 0x97", code)
	}
	first.c.Disconnect(&paho.Disconnect{})
	eventually(t, "the slot given back", func() bool {
		code, c := e.mqttLogin("vl-3", uPlain)
		if c != nil {
			c.c.Disconnect(&paho.Disconnect{})
		}
		return code == 0
	})
	e.must(204, "DELETE", path, uAdmin, nil)
	e.must(404, "DELETE", path, uAdmin, nil)
	e.must(204, "DELETE", "/api/vhost-limits/tenant/max-retained", uAdmin, nil)
	e.must(404, "GET", path, uAdmin, nil)
}

func testUserLimits(e *env) {
	t := e.t
	const path = "/api/user-limits/" + uPlain + "/max-connections"
	e.must(403, "PUT", path, uMon, map[string]any{"value": 1})
	e.must(204, "PUT", path, uAdmin, map[string]any{"value": 1})
	e.must(404, "PUT", "/api/user-limits/nobody/max-connections", uAdmin, map[string]any{"value": 1})
	e.must(400, "PUT", "/api/user-limits/"+uPlain+"/max-sessions", uAdmin, map[string]any{"value": 1})
	var list []userLimitsBody
	e.must(200, "GET", "/api/user-limits", uMon, nil).json(t, &list)
	if len(list) != 1 || list[0].User != uPlain || list[0].Value["max-connections"] != 1 {
		t.Fatalf("GET /api/user-limits %+v", list)
	}
	e.must(403, "GET", "/api/user-limits", uMgr, nil)
	code, first := e.mqttLogin("ul-1", uPlain)
	if code != 0 {
		t.Fatalf("first connection: %#x", code)
	}
	if code, _ := e.mqttLogin("ul-2", uPlain); code != 0x97 {
		t.Fatalf("second connection: CONNACK %#x, want 0x97", code)
	}
	// Another user is not held to it.
	if code, c := e.mqttLogin("ul-admin", uAdmin); code != 0 {
		t.Fatalf("another user: %#x", code)
	} else {
		c.c.Disconnect(&paho.Disconnect{})
	}
	first.c.Disconnect(&paho.Disconnect{})
	e.must(204, "DELETE", path, uAdmin, nil)
	e.must(404, "DELETE", path, uAdmin, nil)
}

func testBans(e *env) {
	t := e.t
	code, live := e.mqttLogin("ban-me", uPlain)
	if code != 0 {
		t.Fatalf("connect: %#x", code)
	}
	body := map[string]any{"as": "clientid", "who": "ban-me", "reason": "stolen device"}
	e.must(403, "POST", "/api/bans", uMon, body)
	e.must(403, "GET", "/api/bans", uMon, nil)
	var b banBody
	e.must(201, "POST", "/api/bans", uAdmin, body).json(t, &b)
	if b.ID == "" || b.As != "clientid" || b.Who != "ban-me" || b.By != uAdmin || b.Reason != "stolen device" || b.Until == "" {
		t.Fatalf("ban %+v", b)
	}
	if code := live.expectDisconnect(); code != 0x98 {
		t.Fatalf("the banned client got DISCONNECT %#x, want 0x98", code)
	}
	if code, _ = e.mqttLogin("ban-me", uPlain); code != 0x8A {
		t.Fatalf("a banned client id: CONNACK %#x, want 0x8A", code)
	}
	// Banning it again updates the ban.
	var again banBody
	e.must(200, "POST", "/api/bans", uAdmin, map[string]any{"as": "clientid", "who": "ban-me", "until": time.Now().Add(time.Hour).Unix()}).json(t, &again)
	if again.ID != b.ID || again.Until == b.Until {
		t.Fatalf("re-ban %+v, first %+v", again, b)
	}
	var list []banBody
	e.must(200, "GET", "/api/bans", uAdmin, nil).json(t, &list)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("GET /api/bans %+v", list)
	}
	for _, bad := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"as": "ip", "who": "x"}, "as:"},
		{map[string]any{"who": "x"}, "as: missing"},
		{map[string]any{"as": "peerhost_net", "who": "10.0.0.0/33"}, "who:"},
		{map[string]any{"as": "username", "who": "u", "until": "tomorrow"}, "until:"},
		{map[string]any{"as": "username", "who": "u", "until": "2001-01-01T00:00:00Z"}, "until:"},
	} {
		r := e.must(400, "POST", "/api/bans", uAdmin, bad.body)
		if got := r.apiErr(t); !strings.Contains(got.Reason, bad.want) {
			t.Fatalf("POST %v: %q, want %q", bad.body, got.Reason, bad.want)
		}
	}
	e.must(204, "DELETE", "/api/bans/"+b.ID, uAdmin, nil)
	e.must(404, "DELETE", "/api/bans/"+b.ID, uAdmin, nil)
	if code, c := e.mqttLogin("ban-me", uPlain); code != 0 {
		t.Fatalf("after the ban is lifted: %#x", code)
	} else {
		c.c.Disconnect(&paho.Disconnect{})
	}
	// A range of addresses: the test's clients come from 127.0.0.1.
	var nb banBody
	e.must(201, "POST", "/api/bans", uAdmin, map[string]any{"as": "peerhost_net", "who": "127.0.0.0/8"}).json(t, &nb)
	if code, _ := e.mqttLogin("from-loopback", uPlain); code != 0x8A {
		t.Fatalf("a banned address range: CONNACK %#x, want 0x8A", code)
	}
	e.must(204, "DELETE", "/api/bans/"+nb.ID, uAdmin, nil)
}
