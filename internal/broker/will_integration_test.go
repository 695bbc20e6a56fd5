package broker_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// willConnect is a v5 CONNECT with a will on topic and the given session expiry and will delay.
func willConnect(id, topic string, sessionExpiry, willDelay uint32) *paho.Connect {
	cp := v5Connect(id, true, sessionExpiry)
	cp.WillMessage = &paho.WillMessage{Topic: topic, QoS: 1, Payload: []byte("gone:" + id)}
	if willDelay > 0 {
		cp.WillProperties = &paho.WillProperties{WillDelayInterval: u32p(willDelay)}
	}
	return cp
}

// watcher subscribes a v5 client to filter, for wills to arrive at.
func watcher(t *testing.T, addr, id, filter string) *v5Client {
	t.Helper()
	w := connectV5(t, addr, v5Connect(id, true, 0))
	w.subscribe(paho.SubscribeOptions{Topic: filter, QoS: 1})
	return w
}

// TestWillOnAbruptClose_MQTT_3_1_2_8: the will is published when the network connection closes
// without DISCONNECT, and when the server closes it for a protocol error.
func TestWillOnAbruptClose_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	w := watcher(t, addr, "will-watch", "will/#")

	t.Run("[MQTT-3.1.2-8] v5 connection dropped", func(t *testing.T) {
		c := connectV5(t, addr, willConnect("will-v5", "will/v5", 0, 0))
		c.drop()
		if m := w.expectMsg(); m.Topic != "will/v5" || string(m.Payload) != "gone:will-v5" || m.QoS != 1 {
			t.Errorf("got %q %q QoS %d, want the will", m.Topic, m.Payload, m.QoS)
		}
	})

	t.Run("[MQTT-3.1.2-8] 3.1.1 connection dropped", func(t *testing.T) {
		c := connectV3(t, addr, "will-v3", true, func(o *mqtt.ClientOptions) {
			o.SetWill("will/v3", "gone:will-v3", 1, false)
		})
		c.drop()
		if m := w.expectMsg(); m.Topic != "will/v3" || string(m.Payload) != "gone:will-v3" {
			t.Errorf("got %q %q, want the will", m.Topic, m.Payload)
		}
	})

	t.Run("[MQTT-3.1.2-8] closed by the server for a protocol error", func(t *testing.T) {
		c := connectV5(t, addr, willConnect("will-bad", "will/bad", 0, 0))
		// A PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4]: written under the client.
		c.conn.Write([]byte{0x36, 0x05, 0x00, 0x01, 'x', 0x00, 0x01})
		if m := w.expectMsg(); m.Topic != "will/bad" {
			t.Errorf("got %q, want the will", m.Topic)
		}
	})

	// paho.golang v0.23.0 packs Will Properties as CONNECT properties and so drops most of
	// them; this CONNECT is written raw.
	t.Run("[MQTT-3.1.3-10] will properties forwarded", func(t *testing.T) {
		willProps := props(
			pStr(packet.PropContentType, "text/plain"),
			pStr(packet.PropResponseTopic, "will/reply"),
			pStr(packet.PropCorrelationData, "\x09\x08"),
			pByte(packet.PropPayloadFormat, 1),
			pU32(packet.PropMessageExpiry, 60),
			pUser("k", "1"),
			pUser("k", "2"),
		)
		r := dialRaw(t, addr, packet.V5)
		r.send(frame(0x10, mstr("MQTT"), []byte{5, 0x02 | 0x04 | 1<<3}, be16(0), withLen(nil),
			mstr("will-props"), withLen(willProps), mstr("will/props"), mstr("bye")))
		expect[*packet.Connack](r)
		r.conn.Close()
		m := w.expectMsg()
		p := m.Properties
		if p == nil {
			t.Fatalf("will arrived without properties")
		}
		user := paho.UserProperties{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}
		if p.ContentType != "text/plain" || p.ResponseTopic != "will/reply" || !bytes.Equal(p.CorrelationData, []byte{9, 8}) ||
			p.PayloadFormat == nil || *p.PayloadFormat != 1 || !slices.Equal(p.User, user) {
			t.Errorf("will properties %+v", p)
		}
		if p.MessageExpiry == nil || *p.MessageExpiry > 60 || *p.MessageExpiry < 55 {
			t.Errorf("will Message Expiry Interval %v, want 60 counted from publication", p.MessageExpiry)
		}
	})

	t.Run("[MQTT-3.1.2-8] will retain", func(t *testing.T) {
		cp := willConnect("will-ret", "will/ret", 0, 0)
		cp.WillMessage.Retain = true
		c := connectV5(t, addr, cp)
		c.drop()
		w.expectMsg()
		late := watcher(t, addr, "will-ret-late", "will/ret")
		if m := late.expectMsg(); !m.Retain || string(m.Payload) != "gone:will-ret" {
			t.Errorf("retained will: got %q retain %v", m.Payload, m.Retain)
		}
	})
}

// TestWillNotOnNormalDisconnect_MQTT_3_1_2_10: DISCONNECT (reason 0x00 in 5.0) removes the will
// [MQTT-3.1.2-10], [MQTT-3.14.4-3]; reason 0x04 keeps it and it is published.
func TestWillNotOnNormalDisconnect_MQTT_3_1_2_10(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	w := watcher(t, addr, "nowill-watch", "nowill/#")

	t.Run("[MQTT-3.1.2-10] v5 DISCONNECT 0x00", func(t *testing.T) {
		c := connectV5(t, addr, willConnect("nowill-v5", "nowill/v5", 0, 0))
		c.disconnect(0x00)
		w.expectNoMsg()
	})

	t.Run("[MQTT-3.1.2-10] 3.1.1 DISCONNECT", func(t *testing.T) {
		c := connectV3(t, addr, "nowill-v3", true, func(o *mqtt.ClientOptions) {
			o.SetWill("nowill/v3", "x", 1, false)
		})
		c.disconnect()
		w.expectNoMsg()
	})

	t.Run("[MQTT-3.1.2-10] v5 DISCONNECT 0x00 with session expiry and will delay", func(t *testing.T) {
		c := connectV5(t, addr, willConnect("nowill-v5-delay", "nowill/delay", 1, 1))
		c.disconnect(0x00)
		time.Sleep(1200 * time.Millisecond) // past both the will delay and the session end
		w.expectNoMsg()
	})

	t.Run("v5 DISCONNECT 0x04 publishes the will", func(t *testing.T) {
		c := connectV5(t, addr, willConnect("will-04", "nowill/04", 0, 0))
		c.disconnect(byte(packet.DisconnectWithWill))
		if m := w.expectMsg(); m.Topic != "nowill/04" {
			t.Errorf("got %q, want the will", m.Topic)
		}
	})
}

// TestWillDelay_MQTT_3_1_3_9: the Will Delay Interval postpones the will; a reconnection within
// it cancels the will [MQTT-3.1.3-9]; a session that ends first publishes it then.
func TestWillDelay_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)

	t.Run("[MQTT-3.1.3-9] published after the delay", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-1", "wd/1")
		c := connectV5(t, addr, willConnect("wd-1", "wd/1", 10, 1))
		c.drop()
		dropped := time.Now()
		m := w.expectMsg()
		if d := time.Since(dropped); d < 900*time.Millisecond || d > 3*time.Second {
			t.Errorf("will arrived %v after the drop, want about 1s", d)
		}
		if m.Topic != "wd/1" {
			t.Errorf("got %q", m.Topic)
		}
	})

	t.Run("[MQTT-3.1.3-9] reconnecting with Clean Start 0 within the delay cancels it", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-2", "wd/2")
		c := connectV5(t, addr, willConnect("wd-2", "wd/2", 10, 1))
		c.drop()
		again := connectV5(t, addr, v5Connect("wd-2", false, 10))
		if !again.ack.SessionPresent {
			t.Errorf("[MQTT-3.2.2-2] reconnection: SessionPresent 0")
		}
		time.Sleep(1200 * time.Millisecond) // past the will delay
		w.expectNoMsg()
	})

	t.Run("[MQTT-3.1.3-9] takeover with Clean Start 0 within the delay cancels it", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-3", "wd/3")
		connectV5(t, addr, willConnect("wd-3", "wd/3", 10, 1))
		again := connectV5(t, addr, v5Connect("wd-3", false, 10))
		if !again.ack.SessionPresent {
			t.Errorf("[MQTT-3.2.2-2] takeover: SessionPresent 0")
		}
		time.Sleep(1200 * time.Millisecond)
		w.expectNoMsg()
	})

	t.Run("[MQTT-3.1.2-8] reconnecting with Clean Start 1 ends the session and publishes it", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-4", "wd/4")
		c := connectV5(t, addr, willConnect("wd-4", "wd/4", 10, 5))
		c.drop()
		// Whether the broker has seen the drop yet (reconnection) or not (takeover), Clean
		// Start 1 ends the session, and the will with it.
		connectV5(t, addr, v5Connect("wd-4", true, 10))
		start := time.Now()
		w.expectMsg()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("will arrived %v after the clean reconnection, want at once", d)
		}
	})

	t.Run("[MQTT-3.1.3-9] delay longer than session expiry: published at session end", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-5", "wd/5")
		c := connectV5(t, addr, willConnect("wd-5", "wd/5", 1, 30))
		c.drop()
		dropped := time.Now()
		w.expectMsg()
		if d := time.Since(dropped); d < 900*time.Millisecond || d > 3*time.Second {
			t.Errorf("will arrived %v after the drop, want at session end, about 1s", d)
		}
	})

	t.Run("[MQTT-3.1.3-9] session expiry 0: published at once despite the delay", func(t *testing.T) {
		t.Parallel()
		w := watcher(t, addr, "wd-watch-6", "wd/6")
		c := connectV5(t, addr, willConnect("wd-6", "wd/6", 0, 30))
		c.drop()
		dropped := time.Now()
		w.expectMsg()
		if d := time.Since(dropped); d > 700*time.Millisecond {
			t.Errorf("will arrived %v after the drop, want at once (the session ended)", d)
		}
	})
}
