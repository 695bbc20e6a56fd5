package broker_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestSysTopics: with sys_interval set, $SYS/broker/... carries the broker's statistics.
func TestSysTopics(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.SysInterval = time.Second })
	c := connectV5(t, addr, v5Connect("sys", true, 0))
	c.subscribe(paho.SubscribeOptions{Topic: "$SYS/broker/#", QoS: 0})
	c.pub("sys/hello", 0, false, "counted")

	want := map[string]func(string) bool{
		"$SYS/broker/version":                  func(v string) bool { return strings.HasPrefix(v, "turnstile ") },
		"$SYS/broker/uptime":                   func(v string) bool { return strings.HasSuffix(v, " seconds") },
		"$SYS/broker/clients/connected":        atLeast(1),
		"$SYS/broker/messages/received":        atLeast(1),
		"$SYS/broker/bytes/sent":               atLeast(1),
		"$SYS/broker/retained messages/count":  atLeast(0),
		"$SYS/broker/subscriptions/count":      atLeast(1),
		"$SYS/broker/publish/messages/dropped": atLeast(0),
	}
	got := map[string]string{}
	deadline := time.After(waitTimeout)
	for len(got) < len(want) {
		select {
		case m := <-c.msgs:
			if _, ok := want[m.Topic]; ok {
				got[m.Topic] = string(m.Payload)
			}
		case <-deadline:
			for topic := range want {
				if _, ok := got[topic]; !ok {
					t.Errorf("no %s within %v", topic, waitTimeout)
				}
			}
			t.FailNow()
		}
	}
	for topic, ok := range want {
		if !ok(got[topic]) {
			t.Errorf("%s = %q", topic, got[topic])
		}
	}
}

func atLeast(n int) func(string) bool {
	return func(v string) bool {
		i, err := strconv.Atoi(v)
		return err == nil && i >= n
	}
}

// TestSysNotMatchedByWildcards_MQTT_4_7_2_1: filters starting with a wildcard do not match
// topics starting with '$', neither live nor from the retained store [MQTT-4.7.2-1]; a filter
// naming $SYS does.
func TestSysNotMatchedByWildcards_MQTT_4_7_2_1(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.SysInterval = time.Second })
	sys := connectV5(t, addr, v5Connect("sys-explicit", true, 0))
	sys.subscribe(paho.SubscribeOptions{Topic: "$SYS/#", QoS: 0})
	all := connectV5(t, addr, v5Connect("sys-all", true, 0))
	all.subscribe(paho.SubscribeOptions{Topic: "#", QoS: 0}, paho.SubscribeOptions{Topic: "+/broker/#", QoS: 0})

	sys.expectMsg() // $SYS is being published (and retained)
	late := connectV5(t, addr, v5Connect("sys-late", true, 0))
	late.subscribe(paho.SubscribeOptions{Topic: "#", QoS: 0}, paho.SubscribeOptions{Topic: "+/broker/uptime", QoS: 0})
	late3 := connectV3(t, addr, "sys-late3", true, nil)
	late3.subscribe("#", 0)

	for _, c := range []*v5Client{all, late} {
		select {
		case m := <-c.msgs:
			t.Errorf("%s: got %q through a wildcard filter", c.id, m.Topic)
		default:
		}
	}
	late.expectNoMsg()
	late3.expectNoMsg()
	all.expectNoMsg()
	sys.pub("ordinary/topic", 0, false, "x") // the wildcards work otherwise
	if m := all.expectMsg(); m.Topic != "ordinary/topic" {
		t.Errorf("got %q", m.Topic)
	}
}

// TestGracefulShutdown_MQTT_3_14_2_1: Close sends connected v5 clients DISCONNECT 0x8B, closes
// 3.1.1 connections, and returns once they are gone.
func TestGracefulShutdown_MQTT_3_14_2_1(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	c5 := connectV5(t, addr, v5Connect("bye5", true, 60))
	c3 := connectV3(t, addr, "bye3", true, nil)
	r := dialRaw(t, addr, packet.V5) // connected but never sent CONNECT
	r.send([]byte{0x10})             // half a packet

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()

	if code := c5.expectServerDisconnect(); code != byte(packet.ServerShuttingDown) {
		t.Errorf("v5 client: DISCONNECT %#x, want 0x8B", code)
	}
	c3.expectLost()
	r.expectClosedSilently()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Close did not return")
	}
	if conn, err := net.DialTimeout("tcp", addr, waitTimeout); err == nil {
		conn.Close()
		t.Errorf("the listener still accepts after Close")
	}
}
