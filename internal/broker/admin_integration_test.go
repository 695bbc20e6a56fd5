package broker_test

import (
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/event"
)

// The management API is a thin layer over these methods; they are tested here without HTTP.

func TestAdminConnectionsAndClose(t *testing.T) {
	addr, srv := startBroker(t, nil)
	watcher := connectV5(t, addr, v5Connect("watcher", true, 0))
	watcher.subscribe(paho.SubscribeOptions{Topic: "wills/#", QoS: 1})
	cp := v5Connect("kicked", true, 0)
	cp.WillMessage = &paho.WillMessage{Topic: "wills/kicked", Payload: []byte("gone"), QoS: 1}
	victim := connectV5(t, addr, cp)

	conns := srv.Connections("/")
	var name string
	for _, c := range conns {
		if c.ClientID == "kicked" {
			name = c.Name
			if c.Protocol != "MQTT 5.0" || c.Vhost != "/" || c.Listener != "tcp" || c.TLS || c.ConnectedAt.IsZero() {
				t.Fatalf("connection info: %+v", c)
			}
		}
	}
	if name == "" || len(conns) != 2 {
		t.Fatalf("Connections(/) = %+v, want watcher and kicked", conns)
	}
	if got := srv.Connections("nope"); len(got) != 0 {
		t.Fatalf("Connections of a missing vhost: %+v", got)
	}
	if !srv.CloseConnection(name, true) {
		t.Fatal("CloseConnection: not found")
	}
	if code := victim.expectServerDisconnect(); code != 0x98 {
		t.Fatalf("[MQTT-3.14.2-1] closed connection got DISCONNECT 0x%02X, want 0x98 (administrative action)", code)
	}
	if m := watcher.expectMsg(); m.Topic != "wills/kicked" || string(m.Payload) != "gone" {
		t.Fatalf("[MQTT-3.1.2-8] will after an administrative close: %q %q", m.Topic, m.Payload)
	}
	if srv.CloseConnection(name, true) {
		t.Fatal("CloseConnection of a closed connection reported success")
	}
}

func TestAdminSessionsAndRetained(t *testing.T) {
	addr, srv := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("lister", false, 600))
	c.subscribe(paho.SubscribeOptions{Topic: "a/#", QoS: 1}, paho.SubscribeOptions{Topic: "$share/g/b", QoS: 0})
	c.pub("r/1", 1, true, "one")
	c.pub("r/2", 0, true, "two")
	c.disconnect(0)

	eventually(t, "session offline", func() bool {
		ss, _ := srv.Sessions("/")
		return len(ss) == 1 && !ss[0].Connected
	})
	ss, ok := srv.Sessions("/")
	if !ok || len(ss) != 1 {
		t.Fatalf("Sessions(/) = %+v, %v", ss, ok)
	}
	s := ss[0]
	if s.Name != "mqtt.lister" || !s.Durable || s.ExpiryInterval != 600 || s.ExpiresAt.IsZero() ||
		len(s.Subscriptions) != 2 || s.Subscriptions[0].Filter != "$share/g/b" || s.Subscriptions[1].Filter != "a/#" {
		t.Fatalf("session info: %+v", s)
	}
	if _, ok := srv.Sessions("missing"); ok {
		t.Fatal("Sessions of a missing vhost reported ok")
	}

	rs, _ := srv.Retained("/", "r/#", 0)
	if len(rs) != 2 || rs[0].Topic != "r/1" || string(rs[1].Payload) != "two" {
		t.Fatalf("Retained(/, r/#) = %+v", rs)
	}
	if !srv.DeleteRetained("/", "r/1") || srv.DeleteRetained("/", "r/1") {
		t.Fatal("DeleteRetained: want true once, then false")
	}
	if rs, _ := srv.Retained("/", "#", 0); len(rs) != 1 {
		t.Fatalf("after delete: %+v", rs)
	}

	if !srv.DeleteSession("/", "lister", true) {
		t.Fatal("DeleteSession: not found")
	}
	c = connectV5(t, addr, v5Connect("lister", false, 600))
	if c.ack.SessionPresent {
		t.Fatal("[MQTT-3.2.2-2] a deleted session is present again")
	}
	o := srv.Overview()
	if o.Vhosts != 1 || o.Totals.ClientsConnected != 1 || srv.app.Counters().Total(event.Connected) < 2 || o.Totals.Retained != 1 {
		t.Fatalf("overview: %+v", o)
	}
}
