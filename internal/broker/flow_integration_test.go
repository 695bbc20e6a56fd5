package broker_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestTopicAliasClientToServer_MQTT_3_3_2_12: a v5 client sets a Topic Alias with a topic and
// then publishes with the alias alone; the broker resolves it [MQTT-3.3.2-12].
func TestTopicAliasClientToServer_MQTT_3_3_2_12(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	sub := connectV5(t, addr, v5Connect("alias-sub", true, 0))
	sub.subscribe(paho.SubscribeOptions{Topic: "alias/#", QoS: 1})

	t.Run("[MQTT-3.3.2-12] paho.golang", func(t *testing.T) {
		pub := connectV5(t, addr, v5Connect("alias-pub", true, 0))
		if pub.ack.Properties == nil || pub.ack.Properties.TopicAliasMaximum == nil || *pub.ack.Properties.TopicAliasMaximum == 0 {
			t.Fatalf("CONNACK has no Topic Alias Maximum: %+v", pub.ack.Properties)
		}
		pub.publish(&paho.Publish{Topic: "alias/x", QoS: 1, Payload: []byte("1"), Properties: &paho.PublishProperties{TopicAlias: u16p(1)}})
		pub.publish(&paho.Publish{Topic: "", QoS: 1, Payload: []byte("2"), Properties: &paho.PublishProperties{TopicAlias: u16p(1)}})
		// Re-pointing the alias at another topic [MQTT-3.3.2-12].
		pub.publish(&paho.Publish{Topic: "alias/y", QoS: 0, Payload: []byte("3"), Properties: &paho.PublishProperties{TopicAlias: u16p(1)}})
		pub.publish(&paho.Publish{Topic: "", QoS: 0, Payload: []byte("4"), Properties: &paho.PublishProperties{TopicAlias: u16p(1)}})
		for _, want := range []string{"alias/x 1", "alias/x 2", "alias/y 3", "alias/y 4"} {
			m := sub.expectMsg()
			if got := m.Topic + " " + string(m.Payload); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if m.Properties != nil && m.Properties.TopicAlias != nil {
				t.Errorf("[MQTT-3.3.2-7] the publisher's alias %d leaked to the subscriber", *m.Properties.TopicAlias)
			}
		}
	})

	t.Run("[MQTT-3.3.2-7] aliases do not outlive the connection", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		r.connect("alias-raw", true, 0, nil)
		r.send(rawPublish(packet.V5, 1, false, false, "alias/z", 1, pU16(packet.PropTopicAlias, 3), []byte("a")))
		expect[*packet.Puback](r)
		r.conn.Close()
		sub.expectMsg()

		r2 := dialRaw(t, addr, packet.V5)
		r2.connect("alias-raw", true, 0, nil)
		r2.send(rawPublish(packet.V5, 1, false, false, "", 2, pU16(packet.PropTopicAlias, 3), []byte("b")))
		r2.expectDisconnect(packet.ProtocolError)
		sub.expectNoMsg()
	})
}

// TestTopicAliasInvalid_MQTT_3_3_2_9: a Topic Alias above the server's Topic Alias Maximum is
// answered with DISCONNECT 0x94 [MQTT-3.3.2-9]; alias 0 is a Protocol Error [MQTT-3.3.2-8], and
// so is an alias alone that was never set.
func TestTopicAliasInvalid_MQTT_3_3_2_9(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.MaxTopicAlias = 2 })
	cases := []struct {
		name  string
		topic string
		alias uint16
		want  packet.ReasonCode
	}{
		{"[MQTT-3.3.2-9] alias above the maximum", "ta/a", 3, packet.TopicAliasInvalid},
		{"[MQTT-3.3.2-8] alias 0", "ta/a", 0, packet.ProtocolError},
		{"[MQTT-3.3.2-12] unknown alias without topic", "", 2, packet.ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr, packet.V5)
			ack := r.connect("ta-"+fmt.Sprint(tc.alias), true, 0, nil)
			if !ack.Props.HasTopicAliasMaximum || ack.Props.TopicAliasMaximum != 2 {
				t.Errorf("CONNACK Topic Alias Maximum %v/%d, want 2", ack.Props.HasTopicAliasMaximum, ack.Props.TopicAliasMaximum)
			}
			r.send(rawPublish(packet.V5, 1, false, false, tc.topic, 1, pU16(packet.PropTopicAlias, tc.alias), []byte("x")))
			r.expectDisconnect(tc.want)
		})
	}
}

// TestTopicAliasServerToClient_MQTT_3_3_2_10: when the client's CONNECT has a Topic Alias
// Maximum, the broker may replace a repeated topic by an alias the client accepts
// [MQTT-3.3.2-10], never above that maximum [MQTT-3.3.2-11]; without one it sends no alias.
func TestTopicAliasServerToClient_MQTT_3_3_2_10(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("sa-pub", true, 0))

	t.Run("[MQTT-3.3.2-10] [MQTT-3.3.2-11] client Topic Alias Maximum 1", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		r.connect("sa-1", true, 0, pU16(packet.PropTopicAliasMaximum, 1))
		r.subscribe(1, "sa/#", 0, nil)
		topics := []string{"sa/x", "sa/x", "sa/y", "sa/x", "sa/y"}
		for i, topic := range topics {
			pub.pub(topic, 0, false, fmt.Sprint(i))
		}
		aliases := map[uint16]string{}
		for i, want := range topics {
			p := r.expectPublish()
			if string(p.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d: payload %q", i, p.Payload)
			}
			topic := p.Topic
			if p.Props.HasTopicAlias {
				a := p.Props.TopicAlias
				if a == 0 || a > 1 {
					t.Fatalf("[MQTT-3.3.2-11] message %d: alias %d, client maximum 1", i, a)
				}
				if topic == "" {
					topic = aliases[a]
				} else {
					aliases[a] = topic
				}
			} else if topic == "" {
				t.Fatalf("message %d: empty topic without alias", i)
			}
			if topic != want {
				t.Errorf("message %d resolves to topic %q, want %q", i, topic, want)
			}
			if i == 1 && p.Topic != "" {
				t.Errorf("message 1 repeats topic %q in full; want the alias set by message 0", p.Topic)
			}
		}
	})

	t.Run("[MQTT-3.3.2-11] no Topic Alias Maximum: no alias", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		r.connect("sa-0", true, 0, nil)
		r.subscribe(1, "sb/#", 0, nil)
		pub.pub("sb/x", 0, false, "1")
		pub.pub("sb/x", 0, false, "2")
		for range 2 {
			if p := r.expectPublish(); p.Props.HasTopicAlias || p.Topic != "sb/x" {
				t.Errorf("topic %q alias %v/%d, want the full topic and no alias", p.Topic, p.Props.HasTopicAlias, p.Props.TopicAlias)
			}
		}
	})
}

// TestReceiveMaximumExceeded_MQTT_3_3_4_7: a client with more unacknowledged QoS 2 PUBLISHes
// than the server's Receive Maximum gets DISCONNECT 0x93 [MQTT-3.3.4-7].
func TestReceiveMaximumExceeded_MQTT_3_3_4_7(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.ReceiveMaximum = 5 })
	r := dialRaw(t, addr, packet.V5)
	ack := r.connect("rmax", true, 0, nil)
	if !ack.Props.HasReceiveMaximum || ack.Props.ReceiveMaximum != 5 {
		t.Errorf("CONNACK Receive Maximum %v/%d, want 5", ack.Props.HasReceiveMaximum, ack.Props.ReceiveMaximum)
	}
	for pid := uint16(1); pid <= 5; pid++ {
		r.send(rawPublish(packet.V5, 2, false, false, "rmax/t", pid, nil, []byte("x")))
		if rec := expect[*packet.Pubrec](r); rec.PacketID != pid {
			t.Fatalf("PUBREC for %d, want %d", rec.PacketID, pid)
		}
	}
	// Completing one flow frees a place [MQTT-3.3.4-8].
	r.send(rawAck(packet.PUBREL, 1))
	if c := expect[*packet.Pubcomp](r); c.PacketID != 1 {
		t.Fatalf("PUBCOMP for %d", c.PacketID)
	}
	r.send(rawPublish(packet.V5, 2, false, false, "rmax/t", 6, nil, []byte("x")))
	expect[*packet.Pubrec](r)
	// A repeated packet id still in flight is not a new message [MQTT-4.3.3-10].
	r.send(rawPublish(packet.V5, 2, true, false, "rmax/t", 6, nil, []byte("x")))
	expect[*packet.Pubrec](r)
	// Six in flight would be one too many.
	r.send(rawPublish(packet.V5, 2, false, false, "rmax/t", 7, nil, []byte("x")))
	r.expectDisconnect(packet.ReceiveMaximumExceeded)
}

// TestClientReceiveMaximum_MQTT_3_3_4_9: the broker never has more unacknowledged QoS 1/2
// PUBLISHes out to a client than the client's Receive Maximum; each PUBACK lets one more go.
func TestClientReceiveMaximum_MQTT_3_3_4_9(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	r := dialRaw(t, addr, packet.V5)
	r.connect("crmax", true, 0, pU16(packet.PropReceiveMaximum, 2))
	r.subscribe(1, "crmax/#", 1, nil)
	pub := connectV5(t, addr, v5Connect("crmax-pub", true, 0))
	for i := range 5 {
		pub.pub("crmax/t", 1, false, fmt.Sprint(i))
	}
	a, b := r.expectPublish(), r.expectPublish()
	if string(a.Payload) != "0" || string(b.Payload) != "1" {
		t.Fatalf("first two: %q %q", a.Payload, b.Payload)
	}
	r.expectNothing() // [MQTT-3.3.4-9]: two in flight

	inflight := []uint16{a.PacketID, b.PacketID}
	for next := 2; next < 5; next++ {
		r.send(rawAck(packet.PUBACK, inflight[0]))
		inflight = inflight[1:]
		p := r.expectPublish()
		if string(p.Payload) != fmt.Sprint(next) {
			t.Fatalf("after PUBACK got %q, want %d (order [MQTT-4.6.0-6])", p.Payload, next)
		}
		inflight = append(inflight, p.PacketID)
		r.expectNothing() // [MQTT-3.3.4-9]: one PUBACK, one more PUBLISH
	}
}

// TestClientMaximumPacketSize_MQTT_3_1_2_25: a message that would make a PUBLISH larger than the
// client's Maximum Packet Size is not sent to it (discarded as if sent), and later small ones are
// [MQTT-3.1.2-24], [MQTT-3.1.2-25].
func TestClientMaximumPacketSize_MQTT_3_1_2_25(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("cmps-pub", true, 0))
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("[MQTT-3.1.2-25] QoS %d", qos), func(t *testing.T) {
			r := dialRaw(t, addr, packet.V5)
			r.connect(fmt.Sprint("cmps-", qos), true, 0, pU32(packet.PropMaximumPacketSize, 128))
			topic := fmt.Sprint("cmps/", qos)
			r.subscribe(1, topic, qos, nil)
			before := stats(srv).Dropped
			pub.pub(topic, qos, false, strings.Repeat("x", 200))
			pub.pub(topic, qos, false, "small")
			p := r.expectPublish()
			if string(p.Payload) != "small" {
				t.Fatalf("got a %d-byte payload, want only the small message", len(p.Payload))
			}
			if size := len(r.last.body) + r.last.h.Size(); size > 128 {
				t.Errorf("[MQTT-3.1.2-24] PUBLISH of %d bytes, client maximum 128", size)
			}
			if qos == 1 {
				r.send(rawAck(packet.PUBACK, p.PacketID))
			}
			r.expectNothing()
			if d := stats(srv).Dropped - before; d != 1 {
				t.Errorf("Stats().Dropped grew by %d for the discarded message, want 1", d)
			}
		})
	}
}

// TestServerMaximumPacketSize_MQTT_3_2_2_15: a packet larger than max_packet_size (announced in
// the v5 CONNACK) ends the connection: DISCONNECT 0x95 for 5.0 [MQTT-4.13.2-1], a plain close
// for 3.1.1.
func TestServerMaximumPacketSize_MQTT_3_2_2_15(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.MaxPacketSize = 1024 })
	big := bytes.Repeat([]byte("x"), 2000)

	t.Run("[MQTT-3.2.2-15] v5 DISCONNECT 0x95", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		ack := r.connect("smps5", true, 0, nil)
		if !ack.Props.HasMaximumPacketSize || ack.Props.MaximumPacketSize != 1024 {
			t.Errorf("CONNACK Maximum Packet Size %v/%d, want 1024", ack.Props.HasMaximumPacketSize, ack.Props.MaximumPacketSize)
		}
		// A PUBLISH of exactly 1024 bytes is fine.
		fits := rawPublish(packet.V5, 1, false, false, "smps/t", 1, nil, nil)
		fits = rawPublish(packet.V5, 1, false, false, "smps/t", 1, nil, make([]byte, 1024-len(fits)-1))
		if len(fits) != 1024 {
			t.Fatalf("test bug: %d-byte packet", len(fits))
		}
		r.send(fits)
		expect[*packet.Puback](r)
		r.send(rawPublish(packet.V5, 1, false, false, "smps/t", 2, nil, big))
		r.expectDisconnect(packet.PacketTooLarge)
	})

	t.Run("[MQTT-3.2.2-15] 3.1.1 closed", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V311)
		r.connect("smps3", true, 0, nil)
		r.send(rawPublish(packet.V311, 1, false, false, "smps/t", 2, nil, big))
		r.expectClosedSilently()
	})
}

// TestSlowSubscriber: a subscriber that stops reading neither blocks the publisher nor another
// subscriber; the QoS 0 messages it cannot take are dropped within max_queued_bytes and counted.
func TestSlowSubscriber(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxQueuedBytes, c.MQTT.MaxPacketSize = 32<<10, 32<<10 })

	slow := dialRaw(t, addr, packet.V5)
	slow.connect("slow", true, 0, nil)
	slow.subscribe(1, "slow/#", 0, nil)
	fast := connectV5(t, addr, v5Connect("fast", true, 0))
	fast.subscribe(paho.SubscribeOptions{Topic: "slow/#", QoS: 1})
	pub := connectV5(t, addr, v5Connect("slow-pub", true, 0))

	payload := bytes.Repeat([]byte("p"), 8<<10)
	sent := 0
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	// The kernel's socket buffers take the first few megabytes; then the broker's out queue
	// fills and drops begin.
	for stats(srv).Dropped < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("published %d messages in %v without a drop at the slow subscriber", sent, time.Since(start))
		}
		// QoS 1: each PUBLISH waits for its PUBACK, so a blocked broker would stall this loop.
		pub.publish(&paho.Publish{Topic: "slow/t", QoS: 1, Payload: payload})
		sent++
		if m := fast.expectMsg(); !bytes.Equal(m.Payload, payload) {
			t.Fatalf("fast subscriber: bad payload")
		}
	}
	t.Logf("published %d messages of %d bytes in %v; stats %+v", sent, len(payload), time.Since(start), stats(srv))
	fast.expectNoMsg()

	// Read what the slow subscriber was sent: every message either reached it or was counted
	// as dropped, once.
	received := 0
	for {
		p, err := slow.read(quiet)
		if err != nil {
			if !isTimeout(err) {
				t.Fatalf("slow subscriber: %v", err)
			}
			break
		}
		if _, ok := p.p.(*packet.Publish); ok {
			received++
		}
	}
	dropped := stats(srv).Dropped
	t.Logf("slow subscriber received %d, Stats().Dropped = %d", received, dropped)
	if received == 0 || received >= sent {
		t.Errorf("slow subscriber received %d of %d", received, sent)
	}
	if int(dropped) != sent-received {
		t.Errorf("Stats().Dropped = %d, want %d (published %d, delivered %d)", dropped, sent-received, sent, received)
	}
	slow.conn.Close()
	waitConnected(t, srv, 2)
	if d := stats(srv).Dropped; int(d) != sent-received {
		t.Errorf("after the slow subscriber left: Stats().Dropped = %d, want %d", d, sent-received)
	}
}

// TestDisconnectReachesAWritingClient_MQTT_4_13_2_1: a client that keeps writing while the
// server closes it for a protocol violation still reads the DISCONNECT with the reason code. The
// server half-closes and drains what the client sends instead of closing with unread data; a
// client library whose writes fail (broken pipe, reset) tears its connection down, and so never
// reads the DISCONNECT, which is what this client does too.
func TestDisconnectReachesAWritingClient_MQTT_4_13_2_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.ReceiveMaximum = 2 })
	for round := range 5 {
		r := dialRaw(t, addr, packet.V5)
		r.connect(fmt.Sprintf("writer-%d", round), true, 0, nil)
		var readIt atomic.Bool
		writeErr := make(chan error, 1)
		go func() { // never stops sending QoS 2 publishes it will not release
			for pid := uint16(1); ; pid++ {
				p := rawPublish(packet.V5, 2, false, false, "w/t", pid, nil, bytes.Repeat([]byte("x"), 512))
				r.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
				if _, err := r.conn.Write(p); err != nil {
					if !readIt.Load() {
						writeErr <- err
						r.conn.Close() // as a client library does when its writes fail
					}
					return
				}
			}
		}()
		for {
			p, err := r.read(waitTimeout)
			if err != nil {
				select {
				case werr := <-writeErr:
					t.Fatalf("round %d: the client's writes failed (%v) before it could read the DISCONNECT", round, werr)
				default:
				}
				t.Fatalf("round %d: no DISCONNECT: %v", round, err)
			}
			if d, ok := p.p.(*packet.Disconnect); ok {
				readIt.Store(true)
				if d.ReasonCode != packet.ReceiveMaximumExceeded {
					t.Fatalf("DISCONNECT %#x, want 0x93", d.ReasonCode)
				}
				break
			}
		}
		r.conn.Close()
	}
}
