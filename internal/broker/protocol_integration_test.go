package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestKeepAlive_MQTT_3_1_2_24: a client silent for 1.5 times its Keep Alive is disconnected
// [MQTT-3.1.2-24] (5.0: DISCONNECT 0x8D first); one that sends PINGREQ in time stays, and gets
// PINGRESP [MQTT-3.12.4-1].
func TestKeepAlive_MQTT_3_1_2_24(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run("[MQTT-3.1.2-24] silent "+v.String()+" client", func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, addr, v)
			r.connect("ka-silent-"+v.String(), true, 1, nil)
			start := time.Now()
			if v == packet.V5 {
				r.expectDisconnect(packet.KeepAliveTimeout)
			} else {
				r.expectClosedSilently()
			}
			if d := time.Since(start); d < 1400*time.Millisecond || d > 2500*time.Millisecond {
				t.Errorf("disconnected after %v, want 1.5s (1.5 × Keep Alive 1s)", d)
			}
		})
	}

	t.Run("[MQTT-3.12.4-1] pinging client stays connected", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, addr, packet.V5)
		r.connect("ka-ping", true, 1, nil)
		for range 4 { // 2.4s, well past 1.5s
			time.Sleep(600 * time.Millisecond)
			r.send([]byte{0xC0, 0x00})
			expect[*packet.Pingresp](r)
		}
	})
}

// TestServerKeepAlive_MQTT_3_2_2_21: with max_keepalive set, a v5 client asking for more (or for
// 0) is told the Server Keep Alive in CONNACK [MQTT-3.2.2-21]; 3.1.1 has no way to say it, so
// the CONNECT is refused with return code 2, as mosquitto does.
func TestServerKeepAlive_MQTT_3_2_2_21(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.MaxKeepalive = 5 })

	for _, ka := range []uint16{60, 0} {
		cp := v5Connect("ska", true, 0)
		cp.KeepAlive = ka
		c := connectV5(t, addr, cp)
		if p := c.ack.Properties; p == nil || p.ServerKeepAlive == nil || *p.ServerKeepAlive != 5 {
			t.Errorf("[MQTT-3.2.2-21] asking Keep Alive %d: CONNACK Server Keep Alive %+v, want 5", ka, p)
		}
		c.disconnect(0)
	}
	cp := v5Connect("ska-ok", true, 0)
	cp.KeepAlive = 4
	if c := connectV5(t, addr, cp); c.ack.Properties != nil && c.ack.Properties.ServerKeepAlive != nil {
		t.Errorf("asking Keep Alive 4 under a maximum of 5: Server Keep Alive %d sent", *c.ack.Properties.ServerKeepAlive)
	}

	c3, err := tryConnectV3(t, addr, "ska3", true, func(o *mqtt.ClientOptions) { o.SetKeepAlive(60 * time.Second) })
	if err == nil || c3.returnCode() != 2 {
		t.Errorf("3.1.1 asking 60 under a maximum of 5: %v (return code %d), want refused with 2", err, c3.returnCode())
	}
	connectV3(t, addr, "ska3-ok", true, func(o *mqtt.ClientOptions) { o.SetKeepAlive(5 * time.Second) })
}

// TestMalformed covers packets a conforming client would not send. Each case runs on its own
// connection; the broker keeps serving everyone else.
func TestMalformed_MQTT_4_13(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	v5, v3 := packet.V5, packet.V311
	// after connects (when id is set) and sends bytes, then checks how the connection ends.
	type check int
	const (
		closedNoConnack check = iota // closed without any packet
		closed                       // closed; a v5 DISCONNECT first is allowed
		disconnect                   // v5 DISCONNECT with code, then closed
	)
	cases := []struct {
		name  string
		v     packet.Version
		id    string // "" sends the bytes as the first packet
		bytes []byte
		how   check
		code  packet.ReasonCode
	}{
		{"[MQTT-3.1.0-1] first packet not CONNECT", v5, "", []byte{0xC0, 0x00}, closedNoConnack, 0},
		{"[MQTT-3.1.0-1] first packet PUBLISH", v3, "", rawPublish(v3, 0, false, false, "a", 0, nil, []byte("x")), closedNoConnack, 0},
		{"[MQTT-3.1.0-2] second CONNECT v5", v5, "m-connect2-5", rawConnect(v5, "m-connect2-5", true, 0, nil), disconnect, packet.ProtocolError},
		{"[MQTT-3.1.0-2] second CONNECT 3.1.1", v3, "m-connect2-3", rawConnect(v3, "m-connect2-3", true, 0, nil), closed, 0},
		{"[MQTT-3.3.1-4] PUBLISH QoS 3 v5", v5, "m-qos3-5", []byte{0x36, 0x06, 0, 1, 'a', 0, 1, 0}, disconnect, packet.MalformedPacket},
		{"[MQTT-3.3.1-4] PUBLISH QoS 3 3.1.1", v3, "m-qos3-3", []byte{0x36, 0x05, 0, 1, 'a', 0, 1}, closed, 0},
		{"[MQTT-3.3.1-2] PUBLISH DUP with QoS 0", v5, "m-dup0", []byte{0x38, 0x04, 0, 1, 'a', 0}, disconnect, packet.MalformedPacket},
		{"[MQTT-3.3.2-2] PUBLISH topic with +", v5, "m-plus", rawPublish(v5, 0, false, false, "a/+/b", 0, nil, []byte("x")), disconnect, packet.TopicNameInvalid},
		{"[MQTT-3.3.2-2] PUBLISH topic with #", v5, "m-hash", rawPublish(v5, 1, false, false, "a/#", 1, nil, []byte("x")), disconnect, packet.TopicNameInvalid},
		{"[MQTT-3.3.2-2] PUBLISH topic with + 3.1.1", v3, "m-plus3", rawPublish(v3, 0, false, false, "a/+", 0, nil, []byte("x")), closed, 0},
		{"[MQTT-1.5.4-1] PUBLISH topic invalid UTF-8", v5, "m-utf8", rawPublish(v5, 0, false, false, "a/\xff\xfe", 0, nil, []byte("x")), disconnect, packet.MalformedPacket},
		{"[MQTT-1.5.4-1] PUBLISH topic with a UTF-16 surrogate", v5, "m-surrogate", rawPublish(v5, 0, false, false, "a/\xed\xa0\x80", 0, nil, nil), disconnect, packet.MalformedPacket},
		{"[MQTT-1.5.4-2] PUBLISH topic with U+0000", v5, "m-nul", rawPublish(v5, 0, false, false, "a\x00b", 0, nil, nil), disconnect, packet.MalformedPacket},
		{"[MQTT-1.5.4-1] PUBLISH topic invalid UTF-8 3.1.1", v3, "m-utf8-3", rawPublish(v3, 0, false, false, "\xc3\x28", 0, nil, nil), closed, 0},
		{"[MQTT-4.7.3-1] PUBLISH empty topic 3.1.1", v3, "m-empty-3", rawPublish(v3, 0, false, false, "", 0, nil, []byte("x")), closed, 0},
		{"[MQTT-3.3.2-1] PUBLISH empty topic without alias v5", v5, "m-empty-5", rawPublish(v5, 0, false, false, "", 0, nil, []byte("x")), disconnect, packet.ProtocolError},
		{"[MQTT-2.2.1-3] PUBLISH QoS 1 with packet id 0", v5, "m-pid0", rawPublish(v5, 1, false, false, "a", 0, nil, nil), disconnect, packet.ProtocolError},
		{"[MQTT-3.3.4-6] PUBLISH with a Subscription Identifier from a client", v5, "m-subid", rawPublish(v5, 0, false, false, "a", 0, pVBI(packet.PropSubscriptionID, 1), nil), disconnect, packet.ProtocolError},
		{"[MQTT-1.5.5-1] Remaining Length of 5 bytes", v5, "m-rl5", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, closed, 0},
		{"[MQTT-1.5.5-1] Remaining Length of 5 bytes 3.1.1", v3, "m-rl5-3", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, closed, 0},
		{"[MQTT-3.8.1-1] SUBSCRIBE reserved flags 0000", v5, "m-subflags", frame(0x80, be16(1), []byte{0}, mstr("a"), []byte{0}), closed, 0},
		{"[MQTT-3.8.1-1] SUBSCRIBE reserved flags 0000 3.1.1", v3, "m-subflags-3", frame(0x80, be16(1), mstr("a"), []byte{0}), closed, 0},
		{"[MQTT-3.8.3-2] SUBSCRIBE without filters", v5, "m-sub-empty", frame(0x82, be16(1), []byte{0}), closed, 0},
		{"[MQTT-3.8.3-5] SUBSCRIBE reserved option bits", v5, "m-sub-opts", rawSubscribe(v5, 1, nil, rawSub{"a", 0xC0}), closed, 0},
		{"SUBSCRIBE Retain Handling 3 is a protocol error (3.8.3.1)", v5, "m-sub-rh3", rawSubscribe(v5, 1, nil, rawSub{"a", 0x30}), closed, 0},
		{"[MQTT-3-8.3-4] SUBSCRIBE QoS 3 3.1.1", v3, "m-sub-qos3", rawSubscribe(v3, 1, nil, rawSub{"a", 0x03}), closed, 0},
		{"[MQTT-3.10.3-2] UNSUBSCRIBE without filters", v5, "m-unsub-empty", frame(0xA2, be16(1), []byte{0}), closed, 0},
		{"[MQTT-3.3.2-4] PUBLISH marked UTF-8 with an invalid payload", v5, "m-pfi", rawPublish(v5, 0, false, false, "a", 0, pByte(packet.PropPayloadFormat, 1), []byte{0xff, 0xfe}), disconnect, packet.PayloadFormatInvalid},
		{"[MQTT-3.8.3-4] SUBSCRIBE shared with No Local", v5, "m-sub-nl", rawSubscribe(v5, 1, nil, rawSub{"$share/g/a", 0x04}), disconnect, packet.ProtocolError},
		{"[MQTT-2.1.3-1] PINGREQ with flags", v5, "m-ping", []byte{0xC1, 0x00}, closed, 0},
		{"[MQTT-2.1.3-1] reserved packet type 0", v3, "m-type0", []byte{0x00, 0x00}, closed, 0},
		{"CONNACK from a client is a protocol error", v5, "m-connack", []byte{0x20, 0x03, 0, 0, 0}, disconnect, packet.ProtocolError},
		{"[MQTT-4.12.0-7] AUTH without an authentication method in CONNECT", v5, "m-auth", []byte{0xF0, 0x00}, disconnect, packet.ProtocolError},
	}
	// The cases run in parallel inside one group, which returns when all are done.
	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := dialRaw(t, addr, tc.v)
				if tc.id != "" {
					r.connect(tc.id, true, 0, nil)
				}
				r.send(tc.bytes)
				switch tc.how {
				case closedNoConnack:
					r.expectClosedSilently()
				case closed:
					got := r.expectClosed()
					for _, p := range got {
						if d, ok := p.p.(*packet.Disconnect); !ok || !d.ReasonCode.IsError() {
							t.Errorf("before the close got %s, want nothing or a DISCONNECT with an error code", p)
						}
					}
				case disconnect:
					r.expectDisconnect(tc.code)
				}
			})
		}

		t.Run("[MQTT-3.1.2-2] unsupported protocol level: CONNACK return code 1", func(t *testing.T) {
			t.Parallel()
			for _, level := range []byte{2, 6} {
				r := dialRaw(t, addr, packet.V311)
				c := rawConnect(packet.V311, "m-level", true, 0, nil)
				c[8] = level // fixed header 2, "MQTT" 6, then the level
				r.send(c)
				got := r.expectClosed()
				if len(got) != 1 || !bytes.Equal(append([]byte{byte(got[0].h.Type) << 4}, got[0].body...), []byte{0x20, 0x00, 0x01}) {
					t.Errorf("level %d: got %v, want CONNACK 20 02 00 01 then close", level, got)
				}
			}
		})

		t.Run("[MQTT-3.1.2-1] unknown protocol name: closed", func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, addr, packet.V311)
			c := rawConnect(packet.V311, "m-name", true, 0, nil)
			copy(c[4:8], "MQTX")
			r.send(c)
			for _, p := range r.expectClosed() {
				if a, ok := p.p.(*packet.Connack); ok && a.ReasonCode == packet.Success {
					t.Errorf("accepted a CONNECT with protocol name MQTX")
				}
			}
		})

		t.Run("[MQTT-3.1.2-3] CONNECT reserved flag set: closed", func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, addr, packet.V311)
			c := rawConnect(packet.V311, "m-reserved", true, 0, nil)
			c[9] |= 0x01
			r.send(c)
			got := r.expectClosed()
			for _, p := range got {
				if a, ok := p.p.(*packet.Connack); ok && a.ReasonCode == packet.Success {
					t.Errorf("accepted a CONNECT with the reserved flag set")
				}
			}
		})

	})

	// The broker still serves everyone once all of the above have been thrown at it.
	func() {
		pub := dialRaw(t, addr, v5)
		pub.connect("healthy-pub", true, 0, nil)
		sub := connectV5(t, addr, v5Connect("healthy-sub", true, 0))
		sub.subscribe(paho.SubscribeOptions{Topic: "healthy/#", QoS: 1})
		pub.send(rawPublish(v5, 1, false, false, "healthy/t", 1, nil, []byte("still here")))
		if a := expect[*packet.Puback](pub); a.ReasonCode != packet.Success {
			t.Errorf("PUBACK %v", a.ReasonCode)
		}
		if m := sub.expectMsg(); string(m.Payload) != "still here" {
			t.Errorf("got %q", m.Payload)
		}
	}()
}

// TestAckReasonCodes_MQTT_3_4_2_1: PUBACK carries 0x10 when no one subscribed and 0x87 for a
// publish into $SYS; retain_available = false refuses a retained PUBLISH with 0x9A
// [MQTT-3.2.2-14].
func TestAckReasonCodes_MQTT_3_4_2_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	r := dialRaw(t, addr, packet.V5)
	r.connect("acks", true, 0, nil)
	r.send(rawPublish(packet.V5, 1, false, false, "nobody/listens", 1, nil, []byte("x")))
	if a := expect[*packet.Puback](r); a.ReasonCode != packet.NoMatchingSubscribers {
		t.Errorf("PUBACK %v, want 0x10", a.ReasonCode)
	}
	r.send(rawPublish(packet.V5, 2, false, false, "$SYS/broker/version", 2, nil, []byte("fake")))
	if a := expect[*packet.Pubrec](r); a.ReasonCode != packet.NotAuthorized {
		t.Errorf("PUBREC %v for a $SYS publish, want 0x87", a.ReasonCode)
	}

	addr2, _ := startBroker(t, func(c *config.Config) { c.MQTT.RetainAvailable = false })
	r2 := dialRaw(t, addr2, packet.V5)
	ack := r2.connect("noretain", true, 0, nil)
	if !ack.Props.HasRetainAvailable || ack.Props.RetainAvailable != 0 {
		t.Errorf("CONNACK Retain Available %v/%d, want 0", ack.Props.HasRetainAvailable, ack.Props.RetainAvailable)
	}
	r2.send(rawPublish(packet.V5, 0, false, true, "r", 0, nil, []byte("x")))
	r2.expectDisconnect(packet.RetainNotSupported)
}

// TestMQTT31: an MQTT 3.1 client (protocol name "MQIsdp", level 3) is served; 3.1 requires a
// client identifier.
func TestMQTT31(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	connect31 := func(id string) []byte {
		return frame(0x10, mstr("MQIsdp"), []byte{3, 0x02}, be16(0), mstr(id))
	}
	r := dialRaw(t, addr, packet.V31)
	r.send(connect31("v31"))
	if a := expect[*packet.Connack](r); a.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %v", a.ReasonCode)
	}
	r.subscribe(1, "v31/t", 1, nil)
	pub := connectV5(t, addr, v5Connect("v31-pub", true, 0))
	pub.pub("v31/t", 1, false, "hello 3.1")
	p := r.expectPublish()
	if p.Topic != "v31/t" || string(p.Payload) != "hello 3.1" || p.QoS != 1 {
		t.Fatalf("got %q %q QoS %d", p.Topic, p.Payload, p.QoS)
	}
	r.send(rawAck(packet.PUBACK, p.PacketID))

	r2 := dialRaw(t, addr, packet.V31)
	r2.send(connect31(""))
	got := r2.expectClosed()
	if len(got) != 1 || got[0].h.Type != packet.CONNACK || !bytes.Equal(got[0].body, []byte{0, 2}) {
		t.Errorf("empty client id on 3.1: got %v, want CONNACK return code 2", got)
	}
}

// TestConnectRefused_MQTT_3_2_2_6: a v5 CONNECT the broker cannot accept is answered with a
// CONNACK carrying the reason (and Session Present 0 [MQTT-3.2.2-6]), then the connection closes
// [MQTT-3.2.2-7].
func TestConnectRefused_MQTT_3_2_2_6(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	addrNoRetain, _ := startBroker(t, func(c *config.Config) { c.MQTT.RetainAvailable = false })
	// connect5 is a v5 CONNECT with flags, properties and the payload after the client id.
	connect5 := func(flags byte, props []byte, payload ...[]byte) []byte {
		return frame(0x10, append([][]byte{mstr("MQTT"), {5, flags}, be16(0), withLen(props), mstr("refused")}, payload...)...)
	}
	will := func(topic string) [][]byte { return [][]byte{withLen(nil), mstr(topic), mstr("x")} }
	cases := []struct {
		name  string
		addr  string
		bytes []byte
		want  packet.ReasonCode
	}{
		{"[MQTT-4.12.0-1] unsupported Authentication Method", addr, connect5(0x02, pStr(packet.PropAuthMethod, "SCRAM-SHA-1")), packet.BadAuthenticationMethod},
		{"[MQTT-3.1.2-3] reserved flag", addr, connect5(0x03, nil), packet.MalformedPacket},
		{"Receive Maximum 0 is a protocol error", addr, connect5(0x02, pU16(packet.PropReceiveMaximum, 0)), packet.ProtocolError},
		{"Maximum Packet Size 0 is a protocol error", addr, connect5(0x02, pU32(packet.PropMaximumPacketSize, 0)), packet.ProtocolError},
		{"Session Expiry Interval twice is a protocol error (3.1.2.11.2)", addr, connect5(0x02, props(pU32(packet.PropSessionExpiry, 1), pU32(packet.PropSessionExpiry, 2))), packet.ProtocolError},
		{"[MQTT-3.1.2-14] will QoS 3", addr, connect5(0x02|0x04|3<<3, nil, will("w")...), packet.MalformedPacket},
		{"[MQTT-3.3.2-2] will topic with a wildcard", addr, connect5(0x02|0x04, nil, will("w/#")...), packet.TopicNameInvalid},
		{"[MQTT-3.2.2-12] will retain without retain available", addrNoRetain, connect5(0x02|0x04|0x20, nil, will("w")...), packet.RetainNotSupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, tc.addr, packet.V5)
			r.send(tc.bytes)
			got := r.expectClosed()
			if len(got) != 1 {
				t.Fatalf("got %v, want one CONNACK then close", got)
			}
			a, ok := got[0].p.(*packet.Connack)
			if !ok || a.ReasonCode != tc.want || a.SessionPresent {
				t.Errorf("got %s, want CONNACK %v", got[0], tc.want)
			}
		})
	}
}
