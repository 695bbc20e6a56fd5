package broker_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestSessionResume_MQTT_3_2_2_2: a session kept by Session Expiry (5.0) or Clean Session 0
// (3.1.1) keeps its subscriptions and queues QoS 1 messages while offline; the reconnection gets
// Session Present 1 [MQTT-3.2.2-2] and the queued messages.
func TestSessionResume_MQTT_3_2_2_2(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("sess-pub", true, 0))

	t.Run("[MQTT-3.2.2-2] v5 Clean Start 0 with Session Expiry", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("sess-v5", true, 60))
		if c.ack.SessionPresent {
			t.Errorf("[MQTT-3.2.2-3] first connection: SessionPresent 1")
		}
		c.subscribe(paho.SubscribeOptions{Topic: "sess/v5", QoS: 1})
		c.disconnect(0)
		waitConnected(t, srv, 1) // only the publisher: the session is offline

		pub.pub("sess/v5", 1, false, "while away 1")
		pub.pub("sess/v5", 0, false, "qos 0, not queued")
		pub.pub("sess/v5", 1, false, "while away 2")

		again := connectV5(t, addr, v5Connect("sess-v5", false, 60))
		if !again.ack.SessionPresent {
			t.Fatalf("[MQTT-3.2.2-2] SessionPresent 0 on resumption")
		}
		for _, want := range []string{"while away 1", "while away 2"} {
			m := again.expectMsg()
			if string(m.Payload) != want || m.QoS != 1 {
				t.Errorf("queued message %q QoS %d, want %q QoS 1", m.Payload, m.QoS, want)
			}
		}
		again.expectNoMsg()
		// The subscription is still there for new messages.
		pub.pub("sess/v5", 1, false, "live")
		if m := again.expectMsg(); string(m.Payload) != "live" {
			t.Errorf("got %q, want live", m.Payload)
		}
	})

	t.Run("[MQTT-3.1.2-4] [MQTT-3.2.2-3] v5 Clean Start 1 discards the session", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("sess-clean", true, 60))
		c.subscribe(paho.SubscribeOptions{Topic: "sess/clean", QoS: 1})
		c.disconnect(0)
		waitConnected(t, srv, 1) // only the publisher: the session is offline
		pub.pub("sess/clean", 1, false, "lost")

		again := connectV5(t, addr, v5Connect("sess-clean", true, 60))
		if again.ack.SessionPresent {
			t.Errorf("[MQTT-3.2.2-3] SessionPresent 1 after Clean Start 1")
		}
		again.expectNoMsg()
		pub.pub("sess/clean", 1, false, "after")
		again.expectNoMsg() // the subscription went with the session
	})

	t.Run("[MQTT-3.1.2-4] 3.1.1 Clean Session 0", func(t *testing.T) {
		c := connectV3(t, addr, "sess-v3", false, nil)
		c.subscribe("sess/v3", 1)
		c.disconnect()
		waitConnected(t, srv, 1) // only the publisher: the session is offline
		pub.pub("sess/v3", 1, false, "while away")

		again := connectV3(t, addr, "sess-v3", false, nil)
		if !again.sessionPresent() {
			t.Errorf("[MQTT-3.2.2-2] 3.1.1 session present 0 on resumption")
		}
		if m := again.expectMsg(); string(m.Payload()) != "while away" || m.Qos() != 1 {
			t.Errorf("queued message %q QoS %d", m.Payload(), m.Qos())
		}
		again.disconnect()
		waitConnected(t, srv, 1) // only the publisher: the session is offline

		clean := connectV3(t, addr, "sess-v3", true, nil)
		if clean.sessionPresent() {
			t.Errorf("[MQTT-3.2.2-1] Clean Session 1: session present 1")
		}
	})
}

// TestSessionExpiry_MQTT_3_1_2_11: an offline session ends when its Session Expiry Interval
// passes; reconnecting with Clean Start 0 afterwards finds no session.
func TestSessionExpiry_MQTT_3_1_2_11(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("sexp", true, 1))
	c.subscribe(paho.SubscribeOptions{Topic: "sexp/a", QoS: 1})
	c.disconnect(0)
	waitConnected(t, srv, 0)
	if n := stats(srv).Sessions; n != 1 {
		t.Errorf("Stats().Sessions = %d right after the disconnect, want 1 (kept for 1s)", n)
	}
	eventually(t, "the session to expire", func() bool { return stats(srv).Sessions == 0 })
	if n := stats(srv).Subscriptions; n != 0 {
		t.Errorf("Stats().Subscriptions = %d after the session ended, want 0", n)
	}
	again := connectV5(t, addr, v5Connect("sexp", false, 1))
	if again.ack.SessionPresent {
		t.Errorf("[MQTT-3.2.2-3] SessionPresent 1 after the session expired")
	}
	pub := connectV5(t, addr, v5Connect("sexp-pub", true, 0))
	pub.pub("sexp/a", 1, false, "x")
	again.expectNoMsg()
}

// TestEmptyClientID_MQTT_3_1_3_6 covers zero-length client identifiers.
func TestEmptyClientID_MQTT_3_1_3_6(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)

	t.Run("[MQTT-3.1.3-8] 3.1.1 with Clean Session 0 is refused with return code 2", func(t *testing.T) {
		c, err := tryConnectV3(t, addr, "", false, nil)
		if err == nil {
			t.Fatalf("connected")
		}
		if rc := c.returnCode(); rc != 2 {
			t.Errorf("CONNACK return code %d, want 2 (identifier rejected)", rc)
		}
	})

	t.Run("[MQTT-3.1.3-6] 3.1.1 with Clean Session 1 is accepted", func(t *testing.T) {
		c := connectV3(t, addr, "", true, nil)
		c.subscribe("empty/3", 1)
		c.pub("empty/3", 1, false, "x")
		c.expectMsg()
	})

	t.Run("[MQTT-3.2.2-16] v5 gets an Assigned Client Identifier", func(t *testing.T) {
		a := connectV5(t, addr, v5Connect("", true, 0))
		b := connectV5(t, addr, v5Connect("", true, 0))
		if a.ack.Properties == nil || a.ack.Properties.AssignedClientID == "" {
			t.Fatalf("no Assigned Client Identifier in CONNACK")
		}
		if a.id == b.id {
			t.Errorf("two clients were assigned the same identifier %q", a.id)
		}
		// Both stay connected: the second did not take over the first.
		a.subscribe(paho.SubscribeOptions{Topic: "empty/5", QoS: 1})
		b.pub("empty/5", 1, false, "x")
		a.expectMsg()
	})

	t.Run("allow_zero_length_clientid false", func(t *testing.T) {
		addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.AllowZeroLengthClientID = false })
		c5, err := tryConnectV5(t, addr, v5Connect("", true, 0))
		if err == nil || c5.ack == nil || c5.ack.ReasonCode != byte(packet.ClientIdentifierNotValid) {
			t.Errorf("v5: %v, CONNACK %+v, want reason 0x85", err, c5.ack)
		}
		c3, err := tryConnectV3(t, addr, "", true, nil)
		if err == nil || c3.returnCode() != 2 {
			t.Errorf("3.1.1: %v, want return code 2", err)
		}
	})
}

// TestTakeover_MQTT_3_1_4_3: a second connection with the same client identifier takes the
// session over; the first connection gets DISCONNECT 0x8E (5.0) and is closed [MQTT-3.1.4-3].
func TestTakeover_MQTT_3_1_4_3(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("tk-pub", true, 0))

	t.Run("[MQTT-3.1.4-3] v5: DISCONNECT 0x8E, subscriptions survive with Clean Start 0", func(t *testing.T) {
		first := connectV5(t, addr, v5Connect("tk5", true, 60))
		first.subscribe(paho.SubscribeOptions{Topic: "tk/5", QoS: 1})
		second := connectV5(t, addr, v5Connect("tk5", false, 60))
		if code := first.expectServerDisconnect(); code != byte(packet.SessionTakenOver) {
			t.Errorf("first connection: DISCONNECT %#x, want 0x8E", code)
		}
		select {
		case <-first.c.Done():
		case <-time.After(waitTimeout):
			t.Errorf("first connection not closed")
		}
		if !second.ack.SessionPresent {
			t.Errorf("[MQTT-3.2.2-2] takeover: SessionPresent 0")
		}
		pub.pub("tk/5", 1, false, "to the new connection")
		if m := second.expectMsg(); string(m.Payload) != "to the new connection" {
			t.Errorf("got %q", m.Payload)
		}
		first.expectNoMsg()
	})

	t.Run("[MQTT-3.1.4-3] 3.1.1: first connection closed, subscriptions survive", func(t *testing.T) {
		first := connectV3(t, addr, "tk3", false, nil)
		first.subscribe("tk/3", 1)
		second := connectV3(t, addr, "tk3", false, nil)
		first.expectLost()
		if !second.sessionPresent() {
			t.Errorf("[MQTT-3.2.2-2] takeover: session present 0")
		}
		pub.pub("tk/3", 1, false, "x")
		second.expectMsg()
	})

	t.Run("[MQTT-3.1.4-3] v5 taken over by 3.1.1", func(t *testing.T) {
		first := connectV5(t, addr, v5Connect("tk-mixed", true, 60))
		connectV3(t, addr, "tk-mixed", true, nil)
		if code := first.expectServerDisconnect(); code != byte(packet.SessionTakenOver) {
			t.Errorf("DISCONNECT %#x, want 0x8E", code)
		}
	})

	if n := stats(srv).Sessions; n > 5 {
		t.Errorf("Stats().Sessions = %d: takeovers left sessions behind", n)
	}
}

// TestRetransmitOnReconnect_MQTT_4_4_0_1: when a session resumes, unacknowledged QoS 1 and QoS 2
// PUBLISH packets are sent again with their packet identifiers and DUP 1, and PUBREL is sent
// again for QoS 2 messages past PUBREC [MQTT-4.4.0-1], [MQTT-3.3.1-1].
func TestRetransmitOnReconnect_MQTT_4_4_0_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("rt-pub", true, 0))

	for _, v := range []packet.Version{packet.V311, packet.V5} {
		// resume connects (again) with a session that survives: Session Expiry for 5.0, Clean
		// Session 0 for 3.1.1.
		resume := func(t *testing.T, id string, clean bool) (*rawClient, *packet.Connack) {
			r := dialRaw(t, addr, v)
			var props []byte
			if v == packet.V5 {
				props = pU32(packet.PropSessionExpiry, 60)
			} else {
				clean = false
			}
			return r, r.connect(id, clean, 0, props)
		}

		t.Run("[MQTT-4.4.0-1] "+v.String()+" QoS 1 PUBLISH resent with DUP", func(t *testing.T) {
			id, topic := "rt1-"+v.String(), "rt/1/"+v.String()
			r, _ := resume(t, id, true)
			r.subscribe(1, topic, 1, nil)
			pub.pub(topic, 1, false, "resend me")
			p := r.expectPublish()
			if p.Dup {
				t.Errorf("[MQTT-3.3.1-3] first delivery has DUP 1")
			}
			r.conn.Close() // no PUBACK

			r2, ack := resume(t, id, false)
			if !ack.SessionPresent {
				t.Fatalf("SessionPresent 0")
			}
			p2 := r2.expectPublish()
			if !p2.Dup || p2.PacketID != p.PacketID || p2.QoS != 1 || p2.Topic != topic || !bytes.Equal(p2.Payload, p.Payload) {
				t.Fatalf("resent PUBLISH dup %v id %d QoS %d topic %q payload %q, want DUP 1, id %d, the same message",
					p2.Dup, p2.PacketID, p2.QoS, p2.Topic, p2.Payload, p.PacketID)
			}
			r2.send(rawAck(packet.PUBACK, p2.PacketID))
			r2.expectNothing()
			r2.conn.Close()

			r3, _ := resume(t, id, false)
			r3.expectNothing() // acknowledged: not sent again
		})

		t.Run("[MQTT-4.4.0-1] "+v.String()+" QoS 2 PUBLISH resent with DUP before PUBREC", func(t *testing.T) {
			id, topic := "rt2-"+v.String(), "rt/2/"+v.String()
			r, _ := resume(t, id, true)
			r.subscribe(1, topic, 2, nil)
			pub.pub(topic, 2, false, "resend me")
			p := r.expectPublish()
			r.conn.Close() // no PUBREC

			r2, _ := resume(t, id, false)
			p2 := r2.expectPublish()
			if !p2.Dup || p2.PacketID != p.PacketID || p2.QoS != 2 || !bytes.Equal(p2.Payload, p.Payload) {
				t.Fatalf("resent PUBLISH dup %v id %d QoS %d, want DUP 1, id %d, QoS 2", p2.Dup, p2.PacketID, p2.QoS, p.PacketID)
			}
			r2.send(rawAck(packet.PUBREC, p2.PacketID))
			if rel := expect[*packet.Pubrel](r2); rel.PacketID != p.PacketID {
				t.Fatalf("PUBREL for %d, want %d", rel.PacketID, p.PacketID)
			}
			r2.send(rawAck(packet.PUBCOMP, p2.PacketID))
			r2.expectNothing()
		})

		t.Run("[MQTT-4.4.0-1] "+v.String()+" QoS 2 PUBREL resent after PUBREC", func(t *testing.T) {
			id, topic := "rt3-"+v.String(), "rt/3/"+v.String()
			r, _ := resume(t, id, true)
			r.subscribe(1, topic, 2, nil)
			pub.pub(topic, 2, false, "resend me")
			p := r.expectPublish()
			r.send(rawAck(packet.PUBREC, p.PacketID))
			if rel := expect[*packet.Pubrel](r); rel.PacketID != p.PacketID {
				t.Fatalf("PUBREL for %d, want %d", rel.PacketID, p.PacketID)
			}
			r.conn.Close() // no PUBCOMP

			r2, _ := resume(t, id, false)
			got := r2.next()
			rel, ok := got.p.(*packet.Pubrel)
			if !ok {
				t.Fatalf("after reconnection got %s, want PUBREL (the message must not be sent again [MQTT-4.3.3-6])", got)
			}
			if rel.PacketID != p.PacketID {
				t.Fatalf("PUBREL for %d, want %d", rel.PacketID, p.PacketID)
			}
			r2.send(rawAck(packet.PUBCOMP, p.PacketID))
			r2.expectNothing()
		})
	}
}

// TestQueuedMessageExpiry_MQTT_3_3_2_5: a queued message whose Message Expiry Interval passes
// while its session is offline is not delivered [MQTT-3.3.2-5]; one still alive carries the
// interval minus the time it waited [MQTT-3.3.2-6].
func TestQueuedMessageExpiry_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("qexp", true, 60))
	c.subscribe(paho.SubscribeOptions{Topic: "qexp/#", QoS: 1})
	c.disconnect(0)
	pub := connectV5(t, addr, v5Connect("qexp-pub", true, 0))
	waitConnected(t, srv, 1)

	send := func(topic string, expiry *uint32) {
		pub.publish(&paho.Publish{Topic: topic, QoS: 1, Payload: []byte(topic),
			Properties: &paho.PublishProperties{MessageExpiry: expiry}})
	}
	send("qexp/short", u32p(1))
	send("qexp/long", u32p(60))
	send("qexp/forever", nil)
	time.Sleep(2 * time.Second) // past the short expiry

	again := connectV5(t, addr, v5Connect("qexp", false, 60))
	m := again.expectMsg()
	if m.Topic != "qexp/long" {
		t.Fatalf("[MQTT-3.3.2-5] first queued message is %q, want qexp/long (qexp/short expired)", m.Topic)
	}
	if m.Properties == nil || m.Properties.MessageExpiry == nil {
		t.Fatalf("[MQTT-3.3.2-6] no Message Expiry Interval on the queued message")
	}
	if e := *m.Properties.MessageExpiry; e > 59 || e < 50 {
		t.Errorf("[MQTT-3.3.2-6] Message Expiry Interval %d after waiting 2s, want 58 or 59", e)
	}
	m = again.expectMsg()
	if m.Topic != "qexp/forever" {
		t.Fatalf("second queued message is %q, want qexp/forever", m.Topic)
	}
	if m.Properties != nil && m.Properties.MessageExpiry != nil {
		t.Errorf("message published without expiry got Message Expiry Interval %d", *m.Properties.MessageExpiry)
	}
	again.expectNoMsg()
	if d := stats(srv).Dropped; d != 1 {
		t.Errorf("Stats().Dropped = %d, want 1 (the expired message)", d)
	}
}

// TestDisconnectSessionExpiry_MQTT_3_14_2_2: DISCONNECT may change the Session Expiry Interval
// (here to 0, ending the session at once), but not from 0 to non-zero, which is a Protocol
// Error [MQTT-3.14.2-2]; max_session_expiry caps the interval and CONNACK says so.
func TestDisconnectSessionExpiry_MQTT_3_14_2_2(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxSessionExpiry = 100 })

	t.Run("to 0 ends the session", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("dse-0", true, 60))
		c.subscribe(paho.SubscribeOptions{Topic: "dse/0", QoS: 1})
		if err := c.c.Disconnect(&paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: u32p(0)}}); err != nil {
			t.Fatal(err)
		}
		waitConnected(t, srv, 0) // a reconnection, not a takeover
		again := connectV5(t, addr, v5Connect("dse-0", false, 60))
		if again.ack.SessionPresent {
			t.Errorf("SessionPresent 1 after DISCONNECT set the Session Expiry Interval to 0")
		}
	})

	t.Run("[MQTT-3.14.2-2] from 0 is a protocol error", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		r.connect("dse-x", true, 0, nil)
		r.send(frame(0xE0, []byte{0x00}, withLen(pU32(packet.PropSessionExpiry, 30))))
		got := r.expectClosed()
		for _, p := range got {
			if d, ok := p.p.(*packet.Disconnect); !ok || d.ReasonCode != packet.ProtocolError {
				t.Errorf("got %s, want nothing or DISCONNECT 0x82", p)
			}
		}
		waitConnected(t, srv, 0)
		again := connectV5(t, addr, v5Connect("dse-x", false, 0))
		if again.ack.SessionPresent {
			t.Errorf("the session survived")
		}
	})

	t.Run("max_session_expiry caps the interval", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("dse-cap", true, 3600))
		if p := c.ack.Properties; p == nil || p.SessionExpiryInterval == nil || *p.SessionExpiryInterval != 100 {
			t.Errorf("CONNACK Session Expiry Interval %+v, want 100", p)
		}
	})
}

// TestOfflineQueueLimit: an offline session queues at most max_queued_messages; the newest
// messages beyond it are dropped and counted, the oldest delivered in order on resumption.
func TestOfflineQueueLimit(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxQueuedMessages = 3 })
	c := connectV5(t, addr, v5Connect("oq", true, 60))
	c.subscribe(paho.SubscribeOptions{Topic: "oq/t", QoS: 2})
	c.disconnect(0)
	pub := connectV5(t, addr, v5Connect("oq-pub", true, 0))
	waitConnected(t, srv, 1)
	for i := range 5 {
		pub.pub("oq/t", 1, false, fmt.Sprint(i))
	}
	again := connectV5(t, addr, v5Connect("oq", false, 60))
	for i, m := range again.expectMsgs(3) {
		if string(m.Payload) != fmt.Sprint(i) {
			t.Errorf("queued message %d is %q, want %d", i, m.Payload, i)
		}
	}
	again.expectNoMsg()
	if d := stats(srv).Dropped; d != 2 {
		t.Errorf("Stats().Dropped = %d, want 2", d)
	}
}
