package mgmt

import (
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/acl"
)

func u32(v uint32) *uint32 { return &v }

// findConn lists the connections at path and returns client id's, or nil.
func (e *env) findConn(path, clientID string) (*connectionBody, map[string]any) {
	e.t.Helper()
	r := e.must(200, "GET", path, uAdmin, nil)
	var list []connectionBody
	r.json(e.t, &list)
	var raw []map[string]any
	r.json(e.t, &raw)
	for i := range list {
		if list[i].ClientID == clientID {
			return &list[i], raw[i]
		}
	}
	return nil, nil
}

// testConnectionsAndClose: a connection is listed with its fields and rates; closing it
// through the API sends the v5 client DISCONNECT 0x98 and publishes its will to a real
// subscriber.
func testConnectionsAndClose(e *env) {
	t := e.t
	e.addUser("cu")
	if err := e.dir.SetPermission(acl.Permission{User: "cu", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	watcher := e.mustConnect(&paho.Connect{ClientID: "watcher", CleanStart: true})
	watcher.subscribe("wills/#", 1)
	victim := e.mustConnect(&paho.Connect{ClientID: "victim", CleanStart: true, KeepAlive: 45,
		Username: "cu", UsernameFlag: true, Password: []byte(pw("cu")), PasswordFlag: true,
		WillMessage: &paho.WillMessage{Topic: "wills/victim", Payload: []byte("gone"), QoS: 1}})
	victim.publish("c/1", 1, false, "hello")

	c, raw := e.findConn("/api/connections", "victim")
	if c == nil {
		t.Fatal("victim not listed")
	}
	local := victim.conn.LocalAddr().(*net.TCPAddr)
	if c.Vhost != "/" || c.User != "cu" || c.Protocol != "MQTT 5.0" || c.PeerHost != "127.0.0.1" || c.PeerPort != local.Port ||
		c.SSL || c.Listener != "tcp" || c.AuthMechanism != "local" || c.Timeout != 45 || c.State != "running" ||
		c.Host != "127.0.0.1" || c.Port == 0 || !strings.Contains(c.Name, " -> ") {
		t.Fatalf("connection fields: %+v", c)
	}
	if age := time.Since(time.UnixMilli(c.ConnectedAt)); age < 0 || age > time.Minute {
		t.Fatalf("connected_at %d is %v ago", c.ConnectedAt, age)
	}
	if v, ok := raw["credential_expiry"]; !ok || v != nil {
		t.Fatalf("credential_expiry %v, want null", v)
	}
	if c.RecvOct == 0 || c.SendOct == 0 || c.MessageStats.Publish != 1 {
		t.Fatalf("counters: %+v", c.traffic)
	}
	// Rates: the sampler compares with the previous request.
	victim.publish("c/2", 1, false, "hello again")
	c, _ = e.findConn("/api/vhosts/%2F/connections", "victim")
	if c == nil || c.RecvOctDetails.Rate <= 0 || c.MessageStats.PublishDetails.Rate <= 0 || c.MessageStats.Publish != 2 {
		t.Fatalf("rates after a publish: %+v", c)
	}

	e.must(204, "DELETE", "/api/connections/"+url.PathEscape(c.Name), uAdmin, nil)
	if code := victim.expectDisconnect(); code != 0x98 {
		t.Fatalf("[MQTT-3.14.2-1] DISCONNECT 0x%02X, want 0x98 (administrative action)", code)
	}
	if m := watcher.expectMsg(); m.Topic != "wills/victim" || string(m.Payload) != "gone" {
		t.Fatalf("[MQTT-3.1.2-8] will after the close: %q %q", m.Topic, m.Payload)
	}
	e.must(404, "DELETE", "/api/connections/"+url.PathEscape(c.Name), uAdmin, nil)
}

func testSessions(e *env) {
	t := e.t
	s := e.mustConnect(&paho.Connect{ClientID: "sess", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(600)}})
	s.subscribe("s/#", 1)
	s.subscribe("$share/g/t", 0)
	find := func() *sessionBody {
		var list []sessionBody
		e.must(200, "GET", "/api/sessions/%2F", uMon, nil).json(t, &list)
		for i := range list {
			if list[i].ClientID == "sess" {
				return &list[i]
			}
		}
		return nil
	}
	ss := find()
	if ss == nil || ss.Name != "mqtt.sess" || !ss.Connected || !ss.Durable || ss.State != "running" ||
		ss.ExpiryInterval != 600 || ss.ExpiresAt != nil || len(ss.Subscriptions) != 2 ||
		ss.Subscriptions[0].Filter != "$share/g/t" || ss.Subscriptions[1].Filter != "s/#" || ss.Subscriptions[1].QoS != 1 {
		t.Fatalf("session: %+v", ss)
	}
	s.conn.Close()
	eventually(t, "the session offline", func() bool { ss = find(); return ss != nil && !ss.Connected })
	if ss.ExpiresAt == nil || ss.State != "idle" {
		t.Fatalf("offline session: %+v", ss)
	}
	p := e.mustConnect(&paho.Connect{ClientID: "sess-pub", CleanStart: true})
	p.publish("s/x", 1, false, "queued")
	eventually(t, "a queued message", func() bool { ss = find(); return ss.Messages == 1 })

	e.must(204, "DELETE", "/api/sessions/%2F/sess", uAdmin, nil)
	if find() != nil {
		t.Fatal("the session is still listed")
	}
	e.must(404, "DELETE", "/api/sessions/%2F/sess", uAdmin, nil)
	e.must(404, "GET", "/api/sessions/nope", uAdmin, nil)
}

func testRetained(e *env) {
	t := e.t
	p := e.mustConnect(&paho.Connect{ClientID: "retainer", CleanStart: true})
	p.publish("r/a", 1, true, "A")
	p.publish("r/b/c", 1, true, "\x00\x01\x02")
	p.publish("e//x", 1, true, "empty level")
	list := func(query string) []retainedBody {
		var out []retainedBody
		e.must(200, "GET", "/api/retained/%2F"+query, uAdmin, nil).json(t, &out)
		return out
	}
	got := list("?topic=" + url.QueryEscape("r/#"))
	if len(got) != 2 || got[0].Topic != "r/a" || got[1].Topic != "r/b/c" || got[1].PayloadEncoding != "base64" ||
		got[1].Payload != base64.StdEncoding.EncodeToString([]byte{0, 1, 2}) || got[1].PayloadBytes != 3 || got[1].QoS != 1 ||
		got[1].Vhost != "/" || got[1].ExpiresAt != nil {
		t.Fatalf("retained r/#: %+v", got)
	}
	if n := len(list("")); n < 3 {
		t.Fatalf("retained with the default filter #: %d messages, want at least 3", n)
	}
	if n := len(list("?limit=1")); n != 1 {
		t.Fatalf("limit=1: %d messages", n)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=1000001", "?topic=a/%23/b", "?topic=a%2Bb", "?topic=%24share%2Fg%2F%23"} {
		r := e.must(400, "GET", "/api/retained/%2F"+q, uAdmin, nil)
		field := strings.Split(q[1:], "=")[0]
		if b := r.apiErr(t); !strings.HasPrefix(b.Reason, field+":") {
			t.Fatalf("GET %s: %+v, want a reason naming %q", q, b, field)
		}
	}
	e.must(404, "GET", "/api/retained/nope", uAdmin, nil)
	// The topic spans path segments, or is one encoded segment; an empty level must be encoded.
	e.must(204, "DELETE", "/api/retained/%2F/r/b/c", uAdmin, nil)
	e.must(204, "DELETE", "/api/retained/%2F/r%2Fa", uAdmin, nil)
	e.must(204, "DELETE", "/api/retained/%2F/e%2F%2Fx", uAdmin, nil)
	if got := list("?topic=" + url.QueryEscape("r/#")); len(got) != 0 {
		t.Fatalf("retained after deleting: %+v", got)
	}
	e.must(404, "DELETE", "/api/retained/%2F/r/a", uAdmin, nil)
	e.must(404, "DELETE", "/api/retained/nope/r/a", uAdmin, nil)
	r := e.must(400, "DELETE", "/api/retained/%2F/r/%23", uAdmin, nil)
	if b := r.apiErr(t); !strings.HasPrefix(b.Reason, "topic:") {
		t.Fatalf("DELETE with a wildcard: %+v", b)
	}
}

// testVisibilityByReadPermission (issue 11): a management user sees the sessions it owns, not
// those of other users of its vhost, and retained messages only where its own topic read
// permission lets it receive them; a monitoring user sees every session but retained messages
// only as its read permissions allow; an administrator sees everything. Real MQTT clients put
// the sessions and messages there.
func testVisibilityByReadPermission(e *env) {
	t := e.t
	e.addUser("tenant-dev")
	for _, p := range []acl.Permission{{User: "tenant-dev", Vhost: "tenant"}} {
		p.Configure, p.Write, p.Read = ".*", ".*", ".*"
		if err := e.dir.SetPermission(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.dir.SetTopicPermission(acl.TopicPermission{User: uMgr, Vhost: "tenant", Exchange: acl.DefaultExchange,
		Write: ".*", Read: "^public/"}); err != nil {
		t.Fatal(err)
	}
	login := func(id, user string) *paho.Connect {
		return &paho.Connect{ClientID: id, CleanStart: false, Username: "tenant:" + user, UsernameFlag: true,
			Password: []byte(pw(user)), PasswordFlag: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: new(uint32(600))}}
	}
	dev := e.mustConnect(login("vis-dev", "tenant-dev"))
	dev.subscribe("secret/#", 1)
	dev.publish("secret/key", 1, true, "hunter2")
	dev.publish("public/motd", 1, true, "hello")
	mine := e.mustConnect(login("vis-mgr", uMgr))
	mine.subscribe("public/#", 1)

	sessions := func(user string) map[string]sessionBody {
		var list []sessionBody
		e.must(200, "GET", "/api/sessions/tenant", user, nil).json(t, &list)
		out := map[string]sessionBody{}
		for _, s := range list {
			out[s.ClientID] = s
		}
		return out
	}
	retained := func(user string) map[string]string {
		var list []retainedBody
		e.must(200, "GET", "/api/retained/tenant", user, nil).json(t, &list)
		out := map[string]string{}
		for _, m := range list {
			p, _ := base64.StdEncoding.DecodeString(m.Payload)
			out[m.Topic] = string(p)
		}
		return out
	}
	if s := sessions(uMgr); len(s) != 1 || s["vis-mgr"].User != uMgr {
		t.Fatalf("management user's sessions: %+v, want its own only", s)
	}
	if s := sessions(uMon); len(s) != 2 || s["vis-dev"].User != "tenant-dev" {
		t.Fatalf("monitoring user's sessions: %+v, want both", s)
	}
	if s := sessions(uAdmin); len(s) != 2 {
		t.Fatalf("administrator's sessions: %+v, want both", s)
	}
	if r := retained(uMgr); len(r) != 1 || r["public/motd"] != "hello" {
		t.Fatalf("management user's retained messages: %v, want public/motd only", r)
	}
	if r := retained(uMon); len(r) != 0 {
		t.Fatalf("monitoring user (no permission on tenant) sees retained messages: %v", r)
	}
	if r := retained(uAdmin); len(r) != 2 || r["secret/key"] != "hunter2" {
		t.Fatalf("administrator's retained messages: %v", r)
	}
}
