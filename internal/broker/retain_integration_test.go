package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestRetained_MQTT_3_3_1_5 covers the retained store as clients see it.
func TestRetained_MQTT_3_3_1_5(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("ret-pub", true, 0))

	t.Run("[MQTT-3.3.1-5] [MQTT-3.3.1-8] stored and sent to new subscribers with RETAIN 1", func(t *testing.T) {
		existing := connectV5(t, addr, v5Connect("ret-existing", true, 0))
		existing.subscribe(paho.SubscribeOptions{Topic: "r1/#", QoS: 2})
		existing3 := connectV3(t, addr, "ret-existing3", true, nil)
		existing3.subscribe("r1/#", 2)

		pub.pub("r1/a", 1, true, "kept")

		// [MQTT-3.3.1-12] (5.0, Retain As Published 0), [MQTT-3.3.1-9] (3.1.1): a message sent
		// because it matches an established subscription has RETAIN 0.
		if m := existing.expectMsg(); m.Retain {
			t.Errorf("[MQTT-3.3.1-12] existing v5 subscriber got RETAIN 1")
		}
		if m := existing3.expectMsg(); m.Retained() {
			t.Errorf("[MQTT-3.3.1-9] existing 3.1.1 subscriber got RETAIN 1")
		}

		late := connectV5(t, addr, v5Connect("ret-late", true, 0))
		late.subscribe(paho.SubscribeOptions{Topic: "r1/+", QoS: 2})
		m := late.expectMsg()
		if !m.Retain || m.Topic != "r1/a" || string(m.Payload) != "kept" || m.QoS != 1 {
			t.Errorf("new v5 subscriber got topic %q payload %q retain %v QoS %d, want r1/a kept retain QoS 1",
				m.Topic, m.Payload, m.Retain, m.QoS)
		}
		late3 := connectV3(t, addr, "ret-late3", true, nil)
		late3.subscribe("r1/#", 0)
		m3 := late3.expectMsg()
		if !m3.Retained() || string(m3.Payload()) != "kept" || m3.Qos() != 0 {
			t.Errorf("new 3.1.1 subscriber got %q retain %v QoS %d, want kept retain QoS 0", m3.Payload(), m3.Retained(), m3.Qos())
		}
		if n := stats(srv).Retained; n != 1 {
			t.Errorf("Stats().Retained = %d, want 1", n)
		}

		// A newer retained message replaces the old one.
		pub.pub("r1/a", 0, true, "newer")
		existing.expectMsg()
		again := connectV5(t, addr, v5Connect("ret-again", true, 0))
		again.subscribe(paho.SubscribeOptions{Topic: "r1/a", QoS: 1})
		if m := again.expectMsg(); string(m.Payload) != "newer" {
			t.Errorf("retained payload %q, want the newest", m.Payload)
		}
		again.expectNoMsg()
	})

	t.Run("[MQTT-3.3.1-6] [MQTT-3.3.1-7] empty retained payload clears", func(t *testing.T) {
		pub.pub("r2/a", 1, true, "kept")
		pub.pub("r2/a", 1, true, "")
		late := connectV5(t, addr, v5Connect("ret-cleared", true, 0))
		late.subscribe(paho.SubscribeOptions{Topic: "r2/#", QoS: 1})
		late.expectNoMsg()
	})

	t.Run("[MQTT-3.3.1-9] Retain Handling 0 sends at every subscribe", func(t *testing.T) {
		pub.pub("r3/a", 1, true, "x")
		c := connectV5(t, addr, v5Connect("ret-rh0", true, 0))
		for i := range 2 {
			c.subscribe(paho.SubscribeOptions{Topic: "r3/a", QoS: 1, RetainHandling: 0})
			if m := c.expectMsg(); !m.Retain {
				t.Errorf("subscribe %d: RETAIN 0", i+1)
			}
		}
		c.expectNoMsg()
	})

	t.Run("[MQTT-3.3.1-10] Retain Handling 1 sends only for a new subscription", func(t *testing.T) {
		pub.pub("r4/a", 1, true, "x")
		c := connectV5(t, addr, v5Connect("ret-rh1", true, 0))
		c.subscribe(paho.SubscribeOptions{Topic: "r4/a", QoS: 1, RetainHandling: 1})
		if m := c.expectMsg(); !m.Retain {
			t.Errorf("first subscribe: RETAIN 0")
		}
		c.subscribe(paho.SubscribeOptions{Topic: "r4/a", QoS: 1, RetainHandling: 1})
		c.expectNoMsg()
	})

	t.Run("[MQTT-3.3.1-11] Retain Handling 2 never sends", func(t *testing.T) {
		pub.pub("r5/a", 1, true, "x")
		c := connectV5(t, addr, v5Connect("ret-rh2", true, 0))
		c.subscribe(paho.SubscribeOptions{Topic: "r5/a", QoS: 1, RetainHandling: 2})
		c.expectNoMsg()
	})

	t.Run("[MQTT-3.3.1-13] Retain As Published keeps the flag on live delivery", func(t *testing.T) {
		c := connectV5(t, addr, v5Connect("ret-rap", true, 0))
		// Retain Handling 2 keeps the retained store out of it: only live deliveries.
		c.subscribe(paho.SubscribeOptions{Topic: "r6/#", QoS: 1, RetainAsPublished: true, RetainHandling: 2})
		pub.pub("r6/a", 1, true, "retained")
		if m := c.expectMsg(); !m.Retain {
			t.Errorf("RETAIN 0 on a retained message with Retain As Published")
		}
		pub.pub("r6/b", 1, false, "plain")
		if m := c.expectMsg(); m.Retain || m.Topic != "r6/b" {
			t.Errorf("got %q %q RETAIN %v, want r6/b with RETAIN 0", m.Topic, m.Payload, m.Retain)
		}
	})
}

// TestRetainedRaceWithSubscribe_MQTT_4_3_3: a retained QoS 2 message published just after a
// subscription is acknowledged reaches the subscriber once. The broker sends the SUBACK before it
// looks up the retained messages for the new subscription, so a message published in between is
// both delivered live and found in the retained store, and arrives twice: for QoS 2, a duplicate
// delivery (two PUBLISH packets with different packet identifiers) that exactly-once forbids.
func TestRetainedRaceWithSubscribe_MQTT_4_3_3(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	c := connectV5(t, addr, v5Connect("race-sub", true, 0))
	pub := connectV5(t, addr, v5Connect("race-pub", true, 0))
	const n = 1500
	for i := range n {
		// The PUBLISH goes out while the SUBSCRIBE is being handled, which widens the window.
		// Whichever is handled first, one copy is due: live if the subscription was there
		// first, from the retained store otherwise.
		topic := fmt.Sprint("race/", i)
		published := make(chan error, 1)
		go func() {
			ctx, cancel := ctxTimeout()
			defer cancel()
			_, err := pub.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 2, Retain: true, Payload: []byte(topic)})
			published <- err
		}()
		c.subscribe(paho.SubscribeOptions{Topic: topic, QoS: 2})
		if err := <-published; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	got := map[string]int{}
	for range n {
		m := c.expectMsg()
		got[m.Topic]++
	}
	c.subscribe(paho.SubscribeOptions{Topic: "race/end", QoS: 2}) // every retained lookup is done
	deadline := time.After(quiet)
	for done := false; !done; {
		select {
		case m := <-c.msgs:
			got[m.Topic]++
		case <-deadline:
			done = true
		}
	}
	dups := 0
	for topic, k := range got {
		if k != 1 {
			dups++
			t.Logf("%s delivered %d times", topic, k)
		}
	}
	if dups > 0 || len(got) != n {
		t.Errorf("%d of %d retained QoS 2 messages published while subscribing were delivered more than once (%d topics seen)", dups, n, len(got))
	}
}

// TestRetainedMessageExpiry_MQTT_3_3_2_5: a retained message whose Message Expiry Interval has
// passed is no longer sent to new subscribers; one sent before then carries the remaining
// interval [MQTT-3.3.2-6].
func TestRetainedMessageExpiry_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	pub := connectV5(t, addr, v5Connect("rexp-pub", true, 0))
	pub.publish(&paho.Publish{Topic: "rexp/a", QoS: 1, Retain: true, Payload: []byte("short"),
		Properties: &paho.PublishProperties{MessageExpiry: u32p(1)}})
	published := time.Now()

	early := connectV5(t, addr, v5Connect("rexp-early", true, 0))
	early.subscribe(paho.SubscribeOptions{Topic: "rexp/a", QoS: 1})
	m := early.expectMsg()
	if m.Properties == nil || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 1 {
		t.Errorf("[MQTT-3.3.2-6] retained copy before expiry has Message Expiry %+v, want at most 1", m.Properties)
	}

	time.Sleep(time.Until(published.Add(1500 * time.Millisecond)))
	late := connectV5(t, addr, v5Connect("rexp-late", true, 0))
	late.subscribe(paho.SubscribeOptions{Topic: "rexp/#", QoS: 1})
	late.expectNoMsg()
}

// TestExpiredRetainedLeave_MQTT_3_3_2_5: an expired retained message leaves the index, the
// counts and the listing when it expires, not when a subscription happens to match it, and
// does not come back after a restart; a newer message on the topic is not swept with it.
func TestExpiredRetainedLeave_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	dir := t.TempDir()
	mod := func(cfg *config.Config) { cfg.Main.DataDir = dir }
	addr, srv := startBrokerOpts(t, mod, app.Options{Clock: clk})
	c := connectV5(t, addr, v5Connect("rx", true, 0))
	for _, topic := range []string{"rx/short", "rx/renewed"} {
		c.publish(&paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("v1"),
			Properties: &paho.PublishProperties{MessageExpiry: u32p(5)}})
	}
	clk.Advance(3 * time.Second)
	c.publish(&paho.Publish{Topic: "rx/renewed", QoS: 1, Retain: true, Payload: []byte("v2"),
		Properties: &paho.PublishProperties{MessageExpiry: u32p(60)}})
	clk.Advance(3 * time.Second) // rx/short and the first rx/renewed have expired
	eventually(t, "the expired retained message swept", func() bool { return stats(srv).Retained == 1 })
	if rs, _ := srv.Retained("/", "#", 0); len(rs) != 1 || rs[0].Topic != "rx/renewed" || string(rs[0].Payload) != "v2" {
		t.Fatalf("retained after the sweep: %+v, want rx/renewed v2 only", rs)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, srv = startBrokerOpts(t, mod, app.Options{Clock: clk})
	if n := stats(srv).Retained; n != 1 {
		t.Fatalf("after a restart %d retained messages, want 1 (the swept one is gone from the store)", n)
	}
}

// TestManyRetainedPacedNotDropped: a QoS 1 '#' subscription over 100,000 retained messages gets
// every one of them: they are paced by the client's receive window and acknowledgements, not
// subject to the session queue's limits.
func TestManyRetainedPacedNotDropped(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	addr, srv := startBroker(t, func(cfg *config.Config) { cfg.Main.DataDir = "" }) // memory: the point is delivery
	r := dialRaw(t, addr, packet.V311)
	r.connect("filler", true, 0, nil)
	var batch []byte
	for i := range n {
		batch = append(batch, rawPublish(packet.V311, 0, false, true, fmt.Sprintf("many/%d/%d", i/1000, i), 0, nil, []byte("v"))...)
		if len(batch) > 64<<10 {
			r.send(batch)
			batch = batch[:0]
		}
	}
	r.send(batch)
	eventually(t, "every retained message stored", func() bool { return stats(srv).Retained == n })

	sub := connectV5(t, addr, &paho.Connect{ClientID: "many-sub", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{ReceiveMaximum: u16p(100)}})
	sub.subscribe(paho.SubscribeOptions{Topic: "many/#", QoS: 1})
	seen := make(map[string]bool, n)
	deadline := time.After(60 * time.Second)
	for len(seen) < n {
		select {
		case m := <-sub.msgs:
			if !m.Retain {
				t.Fatalf("%q without RETAIN", m.Topic)
			}
			seen[m.Topic] = true
		case <-deadline:
			t.Fatalf("%d of %d retained messages arrived; dropped %+v", len(seen), n, stats(srv).DroppedBy)
		}
	}
	if d := stats(srv).Dropped; d != 0 {
		t.Fatalf("%d messages dropped: %+v", d, stats(srv).DroppedBy)
	}
}

// TestPropertiesNotCarriedOver_MQTT_3_3_2: each PUBLISH a v5 subscriber receives carries the
// properties of its own message and no other's: a message with a Message Expiry Interval,
// user properties, a content type and a correlation datum, then one without any, to the same
// subscriber (the first is encoded from a Publish with its properties, the second from a
// PublishHead, writer.go: nothing of the first may reach the second).
func TestPropertiesNotCarriedOver_MQTT_3_3_2(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	sub := connectV5(t, addr, v5Connect("props-sub", true, 0))
	sub.subscribe(paho.SubscribeOptions{Topic: "props/#", QoS: 0})
	pub := connectV5(t, addr, v5Connect("props-pub", true, 0))
	pub.publish(&paho.Publish{Topic: "props/a", QoS: 1, Payload: []byte("with"), Properties: &paho.PublishProperties{
		MessageExpiry: u32p(60), ContentType: "text/plain", CorrelationData: []byte("c1"), ResponseTopic: "props/reply",
		User: paho.UserProperties{{Key: "k", Value: "v"}}}})
	pub.publish(&paho.Publish{Topic: "props/b", QoS: 1, Payload: []byte("without")})
	first, second := sub.expectMsg(), sub.expectMsg()
	if p := first.Properties; p == nil || p.MessageExpiry == nil || p.ContentType != "text/plain" || len(p.User) != 1 {
		t.Fatalf("[MQTT-3.3.2-6] the first message lost its properties: %+v", p)
	}
	if p := second.Properties; p != nil && (p.MessageExpiry != nil || p.ContentType != "" || p.CorrelationData != nil ||
		p.ResponseTopic != "" || len(p.User) != 0) {
		t.Fatalf("the second message carries the first one's properties: %+v", p)
	}
}
