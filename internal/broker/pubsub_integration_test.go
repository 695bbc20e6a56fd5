package broker_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestQoSDelivery_MQTT_3_8_4_8 publishes at every QoS to subscriptions granted every QoS, with
// both client libraries on both ends: each copy arrives once, at the lower of the two QoS
// [MQTT-3.8.4-8], with topic and payload intact.
func TestQoSDelivery_MQTT_3_8_4_8(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)

	sub5 := connectV5(t, addr, v5Connect("qos-sub5", true, 0))
	sub3 := connectV3(t, addr, "qos-sub3", true, nil)
	for s := byte(0); s <= 2; s++ {
		f := fmt.Sprintf("qos/s%d/#", s)
		sa := sub5.subscribe(paho.SubscribeOptions{Topic: f, QoS: s})
		if sa.Reasons[0] != s {
			t.Fatalf("v5 SUBACK for %s QoS %d: %#x [MQTT-3.8.4-6]", f, s, sa.Reasons[0])
		}
		if got := sub3.subscribe(f, s); got != s {
			t.Fatalf("3.1.1 SUBACK for %s QoS %d: %#x", f, s, got)
		}
	}
	pub5 := connectV5(t, addr, v5Connect("qos-pub5", true, 0))
	pub3 := connectV3(t, addr, "qos-pub3", true, nil)

	rnd := rand.New(rand.NewPCG(1, 2))
	for _, from := range []string{"v5", "3.1.1"} {
		for p := byte(0); p <= 2; p++ {
			for s := byte(0); s <= 2; s++ {
				name := fmt.Sprintf("[MQTT-3.8.4-8] %s publisher QoS %d to subscription QoS %d", from, p, s)
				t.Run(name, func(t *testing.T) {
					topic := fmt.Sprintf("qos/s%d/p%d/%s/ünï€ode", s, p, from)
					payload := make([]byte, 3000)
					for i := range payload {
						payload[i] = byte(rnd.IntN(256))
					}
					payload[0] = 0 // binary payloads pass untouched
					if from == "v5" {
						pub5.publish(&paho.Publish{Topic: topic, QoS: p, Payload: payload})
					} else {
						pub3.pub(topic, p, false, payload)
					}
					want := min(p, s)
					m5 := sub5.expectMsg()
					if m5.Topic != topic || !bytes.Equal(m5.Payload, payload) {
						t.Errorf("v5 subscriber got topic %q payload %d bytes, want %q %d bytes intact", m5.Topic, len(m5.Payload), topic, len(payload))
					}
					if m5.QoS != want {
						t.Errorf("v5 subscriber got QoS %d, want %d", m5.QoS, want)
					}
					if m5.Retain {
						t.Errorf("v5 subscriber got RETAIN 1 on a non-retained message")
					}
					m3 := sub3.expectMsg()
					if m3.Topic() != topic || !bytes.Equal(m3.Payload(), payload) {
						t.Errorf("3.1.1 subscriber got topic %q payload %d bytes, want %q %d bytes intact", m3.Topic(), len(m3.Payload()), topic, len(payload))
					}
					if m3.Qos() != want {
						t.Errorf("3.1.1 subscriber got QoS %d, want %d", m3.Qos(), want)
					}
					sub5.expectNoMsgNow(t)
					sub3.expectNoMsgNow(t)
				})
			}
		}
	}
}

// expectNoMsgNow checks, without waiting, that no extra copy is already queued; the final quiet
// period of the calling test covers late ones.
func (c *v5Client) expectNoMsgNow(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Errorf("%s: extra message on %q", c.id, m.Topic)
	default:
	}
}

func (c *v3Client) expectNoMsgNow(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Errorf("%s: extra message on %q", c.id, m.Topic())
	default:
	}
}

// TestWildcards_MQTT_4_7_1 checks '+' (one level) and '#' (this level and every one below,
// the parent included) [MQTT-4.7.1-2], [MQTT-4.7.1-3].
func TestWildcards_MQTT_4_7_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	plus := connectV5(t, addr, v5Connect("wc-plus", true, 0))
	plus.subscribe(paho.SubscribeOptions{Topic: "wc/+/c", QoS: 1})
	hash := connectV5(t, addr, v5Connect("wc-hash", true, 0))
	hash.subscribe(paho.SubscribeOptions{Topic: "wc/#", QoS: 1})
	pub := connectV3(t, addr, "wc-pub", true, nil)

	for _, topic := range []string{"wc", "wc/b/c", "wc/b/d", "wc/b/c/d", "wc//c", "other/b/c"} {
		pub.pub(topic, 1, false, topic)
	}
	// A QoS 1 marker published last: once it arrives everything before it has (ordering [MQTT-4.6.0-6]).
	pub.pub("wc/x/c", 1, false, "end")
	topics := func(c *v5Client) []string {
		var got []string
		for {
			m := c.expectMsg()
			if string(m.Payload) == "end" {
				return got
			}
			got = append(got, m.Topic)
		}
	}
	if got, want := topics(plus), []string{"wc/b/c", "wc//c"}; !slices.Equal(got, want) {
		t.Errorf("[MQTT-4.7.1-3] wc/+/c matched %q, want %q", got, want)
	}
	if got, want := topics(hash), []string{"wc", "wc/b/c", "wc/b/d", "wc/b/c/d", "wc//c"}; !slices.Equal(got, want) {
		t.Errorf("[MQTT-4.7.1-2] wc/# matched %q, want %q", got, want)
	}
}

// TestNoLocal_MQTT_3_8_3_3: with No Local the publisher's own messages are not sent back to it;
// without it they are.
func TestNoLocal_MQTT_3_8_3_3(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("nolocal", true, 0))
	other := connectV5(t, addr, v5Connect("nolocal-other", true, 0))
	c.subscribe(paho.SubscribeOptions{Topic: "nl/a", QoS: 1, NoLocal: true}, paho.SubscribeOptions{Topic: "nl/b", QoS: 1})
	other.subscribe(paho.SubscribeOptions{Topic: "nl/#", QoS: 1})

	c.pub("nl/a", 1, false, "mine")
	if m := other.expectMsg(); m.Topic != "nl/a" {
		t.Fatalf("other subscriber got %q, want nl/a", m.Topic)
	}
	c.expectNoMsg()

	c.pub("nl/b", 1, false, "mine too")
	if m := c.expectMsg(); m.Topic != "nl/b" {
		t.Fatalf("got %q, want own message on nl/b (No Local off)", m.Topic)
	}
	other.expectMsg()

	other.pub("nl/a", 1, false, "theirs")
	if m := c.expectMsg(); m.Topic != "nl/a" || string(m.Payload) != "theirs" {
		t.Fatalf("got %q %q, want another client's message on nl/a", m.Topic, m.Payload)
	}
}

// TestSubscriptionIdentifiers_MQTT_3_3_4_3: a PUBLISH carries the Subscription Identifier of
// the matching subscription [MQTT-3.3.4-3]; when several of a client's subscriptions match, one
// copy carries all their identifiers [MQTT-3.3.4-2], [MQTT-3.3.4-4]; a subscription without an
// identifier adds none [MQTT-3.3.4-5].
func TestSubscriptionIdentifiers_MQTT_3_3_4_3(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)

	t.Run("[MQTT-3.3.4-3] paho.golang single identifier", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("subid-paho", true, 0))
		c.subscribeWith(&paho.SubscribeProperties{SubscriptionIdentifier: intp(42)}, paho.SubscribeOptions{Topic: "sid/p/#", QoS: 1})
		c.subscribe(paho.SubscribeOptions{Topic: "sid/q/#", QoS: 1})
		c.pub("sid/p/1", 1, false, "x")
		m := c.expectMsg()
		if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
			t.Fatalf("PUBLISH subscription identifier %+v, want 42", m.Properties)
		}
		c.pub("sid/q/1", 1, false, "y")
		m = c.expectMsg()
		if m.Properties != nil && m.Properties.SubscriptionIdentifier != nil {
			t.Fatalf("[MQTT-3.3.4-5] PUBLISH for a subscription without identifier carries %d", *m.Properties.SubscriptionIdentifier)
		}
	})

	t.Run("[MQTT-3.3.4-4] overlapping subscriptions, raw", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V5)
		r.connect("subid-raw", true, 0, nil)
		r.subscribe(1, "sid/r/#", 1, pVBI(packet.PropSubscriptionID, 7))
		r.subscribe(2, "sid/+/x", 1, pVBI(packet.PropSubscriptionID, 300))
		pub := connectV5(t, addr, v5Connect("subid-pub", true, 0))
		pub.pub("sid/r/x", 1, false, "both")
		p := r.expectPublish()
		ids := slices.Clone(p.Props.SubscriptionIDs)
		slices.Sort(ids)
		if !slices.Equal(ids, []uint32{7, 300}) {
			t.Fatalf("subscription identifiers %v, want [7 300]", p.Props.SubscriptionIDs)
		}
		r.send(rawAck(packet.PUBACK, p.PacketID))
		r.expectNothing() // one copy only [MQTT-3.3.4-2]
	})
}

// TestOverlappingSubscriptions_MQTT_3_3_4_2: a client whose subscriptions overlap gets one copy,
// at the highest QoS granted among them.
func TestOverlappingSubscriptions_MQTT_3_3_4_2(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("overlap", true, 0))
	c.subscribe(paho.SubscribeOptions{Topic: "ov/#", QoS: 0}, paho.SubscribeOptions{Topic: "ov/+", QoS: 2}, paho.SubscribeOptions{Topic: "ov/a", QoS: 1})
	pub := connectV5(t, addr, v5Connect("overlap-pub", true, 0))
	pub.pub("ov/a", 2, false, "x")
	m := c.expectMsg()
	if m.QoS != 2 {
		t.Errorf("QoS %d, want 2 (the highest of the matching subscriptions)", m.QoS)
	}
	c.expectNoMsg()
}

// TestInvalidFilter_MQTT_4_7_1_1: a filter with '#' not last, or a wildcard sharing a level, is
// refused in SUBACK: 0x8F for 5.0, 0x80 for 3.1.1 [MQTT-4.7.1-1], [MQTT-4.7.1-2],
// [MQTT-3.8.4-5]; the other filters of the same SUBSCRIBE are still granted.
func TestInvalidFilter_MQTT_4_7_1_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	bad := []string{"a/#/b", "a/b#", "a+/b", "$share/g", "$share//a"}

	t.Run("v5 SUBACK 0x8F", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("badfilter5", true, 0))
		opts := []paho.SubscribeOptions{{Topic: "ok/1", QoS: 1}}
		for _, f := range bad {
			opts = append(opts, paho.SubscribeOptions{Topic: f, QoS: 1})
		}
		ctx, cancel := ctxTimeout()
		defer cancel()
		sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
		if sa == nil {
			t.Fatalf("no SUBACK: %v", err)
		}
		if sa.Reasons[0] != 1 {
			t.Errorf("valid filter ok/1: %#x, want 0x01", sa.Reasons[0])
		}
		for i, f := range bad {
			if sa.Reasons[i+1] != byte(packet.TopicFilterInvalid) {
				t.Errorf("filter %q: SUBACK %#x, want 0x8F", f, sa.Reasons[i+1])
			}
		}
	})

	// paho.mqtt.golang refuses to send these filters, so 3.1.1 is spoken raw.
	t.Run("3.1.1 SUBACK 0x80", func(t *testing.T) {
		r := dialRaw(t, addr, packet.V311)
		r.connect("badfilter3", true, 0, nil)
		subs := []rawSub{{"ok/3", 2}}
		for _, f := range bad {
			subs = append(subs, rawSub{f, 1})
		}
		r.send(rawSubscribe(packet.V311, 9, nil, subs...))
		sa := expect[*packet.Suback](r)
		if len(sa.ReasonCodes) != len(subs) {
			t.Fatalf("SUBACK has %d codes for %d filters", len(sa.ReasonCodes), len(subs))
		}
		if sa.ReasonCodes[0] != 2 {
			t.Errorf("valid filter ok/3: %#x, want 0x02", byte(sa.ReasonCodes[0]))
		}
		if got := r.last.body; !bytes.Equal(got[2:], []byte{2, 0x80, 0x80, 0x80, 0x80, 0x80}) {
			t.Errorf("SUBACK return codes % x, want 02 80 80 80 80 80", got[2:])
		}
		r.expectNothing() // still connected
	})
}

// TestUnsubscribe_MQTT_3_10_4_1: after UNSUBSCRIBE no more messages arrive for the filter
// [MQTT-3.10.4-1], [MQTT-3.10.4-4]; a filter that was not subscribed gets 0x11 in a v5 UNSUBACK.
func TestUnsubscribe_MQTT_3_10_4_1(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("unsub5", true, 0))
	c.subscribe(paho.SubscribeOptions{Topic: "un/a", QoS: 1}, paho.SubscribeOptions{Topic: "un/b", QoS: 1})
	c3 := connectV3(t, addr, "unsub3", true, nil)
	c3.subscribe("un/a", 1)
	pub := connectV5(t, addr, v5Connect("unsub-pub", true, 0))

	pub.pub("un/a", 1, false, "1")
	c.expectMsg()
	c3.expectMsg()

	ctx, cancel := ctxTimeout()
	defer cancel()
	ua, err := c.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"un/a", "un/never"}})
	if err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	if !slices.Equal(ua.Reasons, []byte{0x00, 0x11}) {
		t.Errorf("UNSUBACK reasons %#x, want [0x00 0x11]", ua.Reasons)
	}
	c3.wait("unsubscribe", c3.c.Unsubscribe("un/a"))

	pub.pub("un/a", 1, false, "2")
	pub.pub("un/b", 1, false, "3")
	if m := c.expectMsg(); m.Topic != "un/b" {
		t.Errorf("got %q after unsubscribing un/a, want only un/b", m.Topic)
	}
	c.expectNoMsg()
	c3.expectNoMsg()
	if n := stats(srv).Subscriptions; n != 1 {
		t.Errorf("Stats().Subscriptions = %d, want 1", n)
	}
}

// TestPropertiesForwarded_MQTT_3_3_2_17: Payload Format Indicator [MQTT-3.3.2-4], Response Topic
// [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties in order [MQTT-3.3.2-17],
// [MQTT-3.3.2-18] and Content Type [MQTT-3.3.2-20] reach the subscriber unaltered, live and from
// the retained store.
func TestPropertiesForwarded_MQTT_3_3_2_17(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	sub := connectV5(t, addr, v5Connect("props-sub", true, 0))
	sub.subscribe(paho.SubscribeOptions{Topic: "req/#", QoS: 1})
	pub := connectV5(t, addr, v5Connect("props-pub", true, 0))

	user := paho.UserProperties{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "b", Value: "3"}, {Key: "ü", Value: ""}}
	pub.publish(&paho.Publish{
		Topic: "req/x", QoS: 1, Retain: true, Payload: []byte(`{"q":1}`),
		Properties: &paho.PublishProperties{
			ResponseTopic:   "resp/x",
			CorrelationData: []byte{0, 1, 2, 0xFF},
			ContentType:     "application/json",
			PayloadFormat:   bytep(1),
			User:            user,
		},
	})
	check := func(how string, m *paho.Publish) {
		t.Helper()
		p := m.Properties
		if p == nil {
			t.Fatalf("%s: no properties", how)
		}
		if p.ResponseTopic != "resp/x" {
			t.Errorf("%s: [MQTT-3.3.2-15] Response Topic %q", how, p.ResponseTopic)
		}
		if !bytes.Equal(p.CorrelationData, []byte{0, 1, 2, 0xFF}) {
			t.Errorf("%s: [MQTT-3.3.2-16] Correlation Data %x", how, p.CorrelationData)
		}
		if p.ContentType != "application/json" {
			t.Errorf("%s: [MQTT-3.3.2-20] Content Type %q", how, p.ContentType)
		}
		if p.PayloadFormat == nil || *p.PayloadFormat != 1 {
			t.Errorf("%s: [MQTT-3.3.2-4] Payload Format Indicator %v", how, p.PayloadFormat)
		}
		if !slices.Equal(p.User, user) {
			t.Errorf("%s: [MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties %v, want %v in that order", how, p.User, user)
		}
	}
	check("live", sub.expectMsg())

	late := connectV5(t, addr, v5Connect("props-late", true, 0))
	late.subscribe(paho.SubscribeOptions{Topic: "req/#", QoS: 1})
	m := late.expectMsg()
	if !m.Retain {
		t.Errorf("retained copy has RETAIN 0")
	}
	check("retained", m)
}

// TestSharedSubscriptions_MQTT_4_8_2: each message published to a shared subscription's topic
// goes to exactly one member of the group, every member gets some, and a non-shared subscriber
// to the same topic still gets every message.
func TestSharedSubscriptions_MQTT_4_8_2(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	m1 := connectV5(t, addr, v5Connect("share-1", true, 0))
	m2 := connectV5(t, addr, v5Connect("share-2", true, 0))
	m3 := connectV3(t, addr, "share-3", true, nil)
	m1.subscribe(paho.SubscribeOptions{Topic: "$share/g/sh/t", QoS: 1})
	m2.subscribe(paho.SubscribeOptions{Topic: "$share/g/sh/t", QoS: 1})
	m3.subscribe("$share/g/sh/t", 1)
	all := connectV5(t, addr, v5Connect("share-all", true, 0))
	all.subscribe(paho.SubscribeOptions{Topic: "sh/t", QoS: 1})
	pub := connectV5(t, addr, v5Connect("share-pub", true, 0))

	const n = 30
	for i := range n {
		pub.pub("sh/t", 1, false, fmt.Sprint(i))
	}
	got := all.expectMsgs(n)
	for i, m := range got {
		if string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("non-shared subscriber: message %d is %q (order [MQTT-4.6.0-6])", i, m.Payload)
		}
	}

	seen := map[string]int{}
	per := [3]int{}
	deadline := time.After(waitTimeout)
	for len(seen) < n {
		select {
		case m := <-m1.msgs:
			seen[string(m.Payload)]++
			per[0]++
		case m := <-m2.msgs:
			seen[string(m.Payload)]++
			per[1]++
		case m := <-m3.msgs:
			seen[string(m.Payload())]++
			per[2]++
		case <-deadline:
			t.Fatalf("group members got %d distinct messages of %d (per member %v)", len(seen), n, per)
		}
	}
	m1.expectNoMsg()
	m2.expectNoMsgNow(t)
	m3.expectNoMsgNow(t)
	keys := make([]string, 0, len(seen))
	for k, c := range seen {
		if c != 1 {
			t.Errorf("message %s went to %d members, want exactly 1", k, c)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, c := range per {
		if c == 0 {
			t.Errorf("member %d got no message (per member %v)", i+1, per)
		}
	}
	if t.Failed() {
		t.Logf("distribution %v, messages %v", per, keys)
	}
}

// TestQoS2ExactlyOnce_MQTT_4_3_3_10: a QoS 2 PUBLISH repeated (DUP) before PUBREL, on the same
// connection or after the session resumed, is acknowledged again but not delivered twice
// [MQTT-4.3.3-10], [MQTT-4.4.0-1]; once PUBREL completes the flow, the packet id is free for a
// new message [MQTT-4.3.3-11]. A PUBREL for an unknown id gets PUBCOMP 0x92.
func TestQoS2ExactlyOnce_MQTT_4_3_3_10(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	sub := connectV5(t, addr, v5Connect("eo-sub", true, 0))
	sub.subscribe(paho.SubscribeOptions{Topic: "eo/#", QoS: 2})

	expiry := pU32(packet.PropSessionExpiry, 60)
	r := dialRaw(t, addr, packet.V5)
	r.connect("eo-pub", true, 0, expiry)
	r.send(rawPublish(packet.V5, 2, false, false, "eo/t", 1, nil, []byte("once")))
	if rec := expect[*packet.Pubrec](r); rec.PacketID != 1 || rec.ReasonCode != packet.Success {
		t.Fatalf("PUBREC %+v", rec)
	}
	r.send(rawPublish(packet.V5, 2, true, false, "eo/t", 1, nil, []byte("once")))
	if rec := expect[*packet.Pubrec](r); rec.PacketID != 1 {
		t.Fatalf("PUBREC for the repeat: %+v", rec)
	}

	// The connection drops before PUBREL; the session resumes and the client repeats again.
	r.conn.Close()
	r2 := dialRaw(t, addr, packet.V5)
	if ack := r2.connect("eo-pub", false, 0, expiry); !ack.SessionPresent {
		t.Fatalf("SessionPresent 0")
	}
	r2.send(rawPublish(packet.V5, 2, true, false, "eo/t", 1, nil, []byte("once")))
	expect[*packet.Pubrec](r2)
	r2.send(rawAck(packet.PUBREL, 1))
	if c := expect[*packet.Pubcomp](r2); c.PacketID != 1 || c.ReasonCode != packet.Success {
		t.Fatalf("PUBCOMP %+v", c)
	}
	if m := sub.expectMsg(); string(m.Payload) != "once" {
		t.Fatalf("got %q", m.Payload)
	}
	sub.expectNoMsg()

	// Packet id 1 is free again: a new message with it is a new message.
	r2.send(rawPublish(packet.V5, 2, false, false, "eo/t", 1, nil, []byte("twice")))
	expect[*packet.Pubrec](r2)
	if m := sub.expectMsg(); string(m.Payload) != "twice" {
		t.Fatalf("got %q, want the new message", m.Payload)
	}
	r2.send(rawAck(packet.PUBREL, 1))
	expect[*packet.Pubcomp](r2)

	r2.send(rawAck(packet.PUBREL, 999))
	if c := expect[*packet.Pubcomp](r2); c.PacketID != 999 || c.ReasonCode != packet.PacketIdentifierNotFound {
		t.Errorf("PUBCOMP for an unknown id: %+v, want 0x92", c)
	}
}

// TestResubscribe_MQTT_3_8_4_3: subscribing again to the same filter replaces the subscription:
// its new QoS applies and messages are not duplicated.
func TestResubscribe_MQTT_3_8_4_3(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("resub", true, 0))
	c.subscribe(paho.SubscribeOptions{Topic: "resub/t", QoS: 0})
	c.subscribe(paho.SubscribeOptions{Topic: "resub/t", QoS: 2})
	if n := stats(srv).Subscriptions; n != 1 {
		t.Errorf("Stats().Subscriptions = %d, want 1", n)
	}
	c.pub("resub/t", 2, false, "x")
	if m := c.expectMsg(); m.QoS != 2 {
		t.Errorf("QoS %d, want 2 (the replacing subscription's)", m.QoS)
	}
	c.expectNoMsg()
}

// TestSharedSubscriptionMembership_MQTT_4_8_2: shared subscriptions get no retained messages on
// subscribe, prefer online members over a member whose session is offline, and can be
// unsubscribed.
func TestSharedSubscriptionMembership_MQTT_4_8_2(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("shm-pub", true, 0))
	pub.pub("shm/t", 1, true, "retained")

	a := connectV5(t, addr, v5Connect("shm-a", true, 60))
	a.subscribe(paho.SubscribeOptions{Topic: "$share/g/shm/t", QoS: 1})
	b := connectV5(t, addr, v5Connect("shm-b", true, 0))
	b.subscribe(paho.SubscribeOptions{Topic: "$share/g/shm/t", QoS: 1})
	a.expectNoMsg() // no retained message for a shared subscription
	b.expectNoMsgNow(t)

	a.disconnect(0) // its session, and its membership, stay
	waitConnected(t, srv, 2)
	for i := range 6 {
		pub.pub("shm/t", 1, false, fmt.Sprint(i))
	}
	b.expectMsgs(6) // all to the online member
	b.expectNoMsg()

	ctx, cancel := ctxTimeout()
	defer cancel()
	ua, err := b.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"$share/g/shm/t"}})
	if err != nil || ua.Reasons[0] != 0 {
		t.Fatalf("unsubscribe shared: %v %+v", err, ua)
	}
	pub.pub("shm/t", 1, false, "after")
	b.expectNoMsg()

	// The offline member's session queued what it was given.
	again := connectV5(t, addr, v5Connect("shm-a", false, 60))
	if m := again.expectMsg(); string(m.Payload) != "after" {
		t.Errorf("offline member got %q, want only the message sent after b left", m.Payload)
	}
	again.expectNoMsg()
}
