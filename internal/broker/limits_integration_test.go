package broker_test

// Attacks on the limits through the whole program (docs/security.md, "Limits"): every limit at
// its boundary, with parallel CONNECTs, SUBSCRIBEs and PUBLISHes racing for the last slot (run
// them with -race), through raw sockets, paho.golang (v5) and paho.mqtt.golang (3.1.1).

import (
	"fmt"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// rawConnectAs builds a clean CONNECT of version v with client id id, and a user name and a
// password when user is not "".
func rawConnectAs(v packet.Version, id, user, password string) []byte {
	if user == "" {
		return rawConnect(v, id, true, 30, nil)
	}
	return rawLoginConnect(v, id, user, password)
}

// raceConnects sends n CONNECTs at once (even ones v5, odd ones 3.1.1, from local) and returns
// how many were accepted and the refusal codes (v5 reason codes and 3.1.1 return codes apart).
// Accepted connections stay open until the test ends.
func raceConnects(t *testing.T, addr, local string, n int, id func(i int) string, user, password string) (accepted int, v5codes, v3codes map[byte]int) {
	t.Helper()
	var mu sync.Mutex
	v5codes, v3codes = map[byte]int{}, map[byte]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		v := packet.V5
		if i%2 == 1 {
			v = packet.V311
		}
		conn := dialFrom(t, local, addr)
		t.Cleanup(func() { conn.Close() })
		wg.Go(func() {
			c := &rawClient{t: t, conn: conn, v: v, rd: newReader(conn)}
			<-start
			c.send(rawConnectAs(v, id(i), user, password))
			p, err := c.read(waitTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("CONNECT %d: %v", i, err)
				return
			}
			ack := p.p.(*packet.Connack)
			switch {
			case ack.ReasonCode == packet.Success:
				accepted++
			case v == packet.V5:
				v5codes[byte(ack.ReasonCode)]++
			default:
				v3codes[packet.ConnackReturnCode311(ack.ReasonCode)]++
			}
		})
	}
	close(start)
	wg.Wait()
	return accepted, v5codes, v3codes
}

// checkRace checks that exactly want of n racing CONNECTs got in and the others were refused
// with v5 code and 3.1.1 return code rc.
func checkRace(t *testing.T, what string, n, want, accepted int, v5codes, v3codes map[byte]int, code, rc byte) {
	t.Helper()
	refused := v5codes[code] + v3codes[rc]
	if accepted != want || refused != n-want || len(v5codes)+len(v3codes) > 2 {
		t.Fatalf("%s: %d of %d accepted, refusals v5 %v 3.1.1 %v; want %d accepted, the rest v5 %#x / 3.1.1 %d",
			what, accepted, n, v5codes, v3codes, want, code, rc)
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	t.Run("[mqtt] max_connections", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxConnections = 5 })
		var held []*v5Client
		for i := range 4 {
			held = append(held, connectV5(t, addr, v5Connect(fmt.Sprintf("held-%d", i), false, 3600)))
		}
		ok, v5c, v3c := raceConnects(t, addr, "", 12, func(i int) string { return fmt.Sprintf("race-%d", i) }, "", "")
		checkRace(t, "max_connections 5 with 4 held", 12, 1, ok, v5c, v3c, 0x97, 3)
		// A reconnect of a held client id takes its own slot over: it is not refused at the limit.
		again := connectV5(t, addr, v5Connect("held-0", false, 3600))
		if !again.ack.SessionPresent {
			t.Fatal("the reconnect did not resume its session")
		}
		if code := held[0].expectServerDisconnect(); code != 0x8E {
			t.Fatalf("taken over with %#x", code)
		}
		// A slot given back is free again.
		held[1].disconnect(0)
		eventually(t, "a free slot", func() bool {
			total, _, _ := srv.ConnectionCounts()
			return total == 4
		})
		connectV5(t, addr, v5Connect("after", true, 0))
		if n := srv.app.Counters().ByReason(event.Refused)[event.LimitMaxConnections]; n != 11 {
			t.Fatalf("%d refusals reported as max_connections, want 11", n)
		}
	})
	t.Run("vhost max-connections", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, nil)
		if err := srv.Dir().SetVhostLimit("/", "max-connections", 3); err != nil {
			t.Fatal(err)
		}
		ok, v5c, v3c := raceConnects(t, addr, "", 10, func(i int) string { return fmt.Sprintf("vc-%d", i) }, "", "")
		checkRace(t, "vhost max-connections 3", 10, 3, ok, v5c, v3c, 0x97, 3)
		// 0 refuses every connection; -1 lifts the limit.
		srv.Dir().SetVhostLimit("/", "max-connections", -1)
		connectV5(t, addr, v5Connect("unlimited", true, 0))
	})
	t.Run("user max-connections", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, secure)
		addUser(t, srv, "fleet", "pw")
		grantAll(t, srv, "fleet", "/")
		addUser(t, srv, "other", "pw")
		grantAll(t, srv, "other", "/")
		if err := srv.Dir().SetUserLimit("fleet", "max-connections", 2); err != nil {
			t.Fatal(err)
		}
		ok, v5c, v3c := raceConnects(t, addr, "", 8, func(i int) string { return fmt.Sprintf("uc-%d", i) }, "fleet", "pw")
		checkRace(t, "user max-connections 2", 8, 2, ok, v5c, v3c, 0x97, 3)
		connectV5(t, addr, login("other-1", "other", "pw")) // another user is not held to it
		_, byVhost, byUser := srv.ConnectionCounts()
		if byUser["fleet"] != 2 || byUser["other"] != 1 || byVhost["/"] != 3 {
			t.Fatalf("counts by user %v, by vhost %v", byUser, byVhost)
		}
	})
}

func TestSessionLimit(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxSessionsPerVhost = 1000 })
	if err := srv.Dir().SetVhostLimit("/", "max-sessions", 3); err != nil {
		t.Fatal(err)
	}
	// Two persistent sessions, offline: they count.
	for _, id := range []string{"p1", "p2"} {
		c := connectV5(t, addr, v5Connect(id, true, 3600))
		c.drop()
	}
	eventually(t, "2 offline sessions", func() bool { return stats(srv).Sessions == 2 && stats(srv).ClientsConnected == 0 })
	ok, v5c, v3c := raceConnects(t, addr, "", 9, func(i int) string { return fmt.Sprintf("s-%d", i) }, "", "")
	checkRace(t, "max-sessions 3 with 2 stored", 9, 1, ok, v5c, v3c, 0x97, 3)
	// An existing session resumes at the limit; a Clean Start replaces it and takes no more.
	c := connectV5(t, addr, v5Connect("p1", false, 3600))
	if !c.ack.SessionPresent {
		t.Fatal("p1 not resumed")
	}
	connectV5(t, addr, v5Connect("p2", true, 3600))
	if n := stats(srv).Sessions; n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	if _, err := tryConnectV3(t, addr, "s-v3", true, nil); err == nil {
		t.Fatal("a 3.1.1 client got a fourth session")
	}
	// Without a limit of its own the vhost has [mqtt] max_sessions_per_vhost.
	srv.Dir().ClearVhostLimit("/", "max-sessions")
	connectV5(t, addr, v5Connect("s-default", true, 0))
}

func TestSessionLimitDefault(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxSessionsPerVhost = 2 })
	connectV5(t, addr, v5Connect("d1", true, 0))
	connectV5(t, addr, v5Connect("d2", true, 0))
	c, err := tryConnectV5(t, addr, v5Connect("d3", true, 0))
	if code := connackCode(t, c, err); code != 0x97 {
		t.Fatalf("third session: %#x, want 0x97", code)
	}
	srv.Dir().SetVhostLimit("/", "max-sessions", -1) // the vhost's own: no limit
	connectV5(t, addr, v5Connect("d3", true, 0))
}

func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(c *config.Config) { c.MQTT.MaxSubscriptionsPerClient = 3 })
	c := connectV5(t, addr, v5Connect("subs", true, 0))
	for _, f := range []string{"a", "b", "c"} {
		c.mustSub(f)
	}
	sa := trySubscribe(t, c, paho.SubscribeOptions{Topic: "d", QoS: 1})
	if sa.Reasons[0] != 0x97 {
		t.Fatalf("fourth filter: SUBACK %#x, want 0x97", sa.Reasons[0])
	}
	c.mustSub("a") // a repeated filter replaces its subscription
	sa = trySubscribe(t, c, paho.SubscribeOptions{Topic: "b", QoS: 1}, paho.SubscribeOptions{Topic: "e", QoS: 1})
	if sa.Reasons[0] != 1 || sa.Reasons[1] != 0x97 {
		t.Fatalf("SUBACK %v, want [1 0x97]", sa.Reasons)
	}
	p := connectV5(t, addr, v5Connect("pub", true, 0))
	p.pub("d", 1, false, "not for a refused filter")
	p.pub("a", 1, false, "x")
	c.expectFrom("a", "x")
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := c.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	c.mustSub("d") // room again

	v3 := connectV3(t, addr, "subs3", true, nil)
	for _, f := range []string{"x", "y", "z"} {
		if code := v3.subscribe(f, 1); code != 1 {
			t.Fatalf("3.1.1 %s: %#x", f, code)
		}
	}
	if code := v3.subscribe("w", 1); code != 0x80 {
		t.Fatalf("3.1.1 fourth filter: SUBACK %#x, want 0x80", code)
	}
	if n := srv.app.Counters().ByReason(event.LimitExceeded)[event.LimitMaxSubscriptions]; n != 3 {
		t.Fatalf("%d subscription refusals reported, want 3", n)
	}
}

func TestRetainedLimit(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, nil)
	if err := srv.Dir().SetVhostLimit("/", "max-retained", 5); err != nil {
		t.Fatal(err)
	}
	pub := connectV5(t, addr, v5Connect("r-pub", true, 0))
	for i := range 4 {
		pub.pub(fmt.Sprintf("r/%d", i), 1, true, "kept")
	}
	// Six publishers race for the last slot, each with a new topic.
	var pubs []*v5Client
	for i := range 6 {
		pubs = append(pubs, connectV5(t, addr, v5Connect(fmt.Sprintf("r-race-%d", i), true, 0)))
	}
	var mu sync.Mutex
	codes := map[byte]int{}
	var wg sync.WaitGroup
	for i, c := range pubs {
		wg.Go(func() {
			code := c.tryPub(fmt.Sprintf("new/%d", i), 1, true, "race")
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[0x97] != 5 || codes[0x00]+codes[0x10] != 1 {
		t.Fatalf("PUBACK codes %v, want one success and five 0x97", codes)
	}
	if n := stats(srv).Retained; n != 5 {
		t.Fatalf("%d retained, want 5", n)
	}
	// At the limit: replacing passes, a new topic does not; clearing frees a slot.
	if code := pub.tryPub("r/0", 1, true, "replaced"); code >= 0x80 {
		t.Fatalf("replace at the limit: %#x", code)
	}
	sub := connectV5(t, addr, v5Connect("r-sub", true, 0))
	sub.mustSub("more/#")
	if code := pub.tryPub("more/x", 2, true, "refused"); code != 0x97 {
		t.Fatalf("QoS 2 new topic at the limit: PUBREC %#x, want 0x97", code)
	}
	sub.expectNoMsg() // a refused retained message is not delivered either
	if code := pub.tryPub("r/1", 1, true, ""); code >= 0x80 {
		t.Fatalf("clear at the limit: %#x", code)
	}
	pub.pub("more/y", 1, true, "fits")
	sub.expectFrom("more/y", "fits")

	// 3.1.1: acknowledged, neither stored nor delivered.
	v3 := connectV3(t, addr, "r-v3", true, nil)
	v3.pub("more/z", 1, true, "3.1.1")
	sub.expectNoMsg()
	late := connectV5(t, addr, v5Connect("r-late", true, 0))
	late.mustSub("more/z")
	late.expectNoMsg()
	if n := srv.app.Counters().ByReason(event.LimitExceeded)[event.LimitVhostMaxRetained]; n != 7 {
		t.Fatalf("%d retained refusals reported, want 7", n)
	}
}

func TestConnectRateLimit(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) {
		c.MQTT.MaxConnectRate, c.MQTT.MaxConnectBurst, c.MQTT.ConnectRateExemptLoopback = 1, 3, false
	})
	for i := range 3 {
		connectV5(t, addr, v5Connect(fmt.Sprintf("burst-%d", i), true, 0))
	}
	c, err := tryConnectV5(t, addr, v5Connect("over", true, 0))
	if code := connackCode(t, c, err); code != 0x9F {
		t.Fatalf("fourth CONNECT at once: %#x, want 0x9F", code)
	}
	if c3, err := tryConnectV3(t, addr, "over3", true, nil); err == nil || c3.returnCode() != 3 {
		t.Fatalf("3.1.1 CONNECT over the rate: %v, return code %d; want 3", err, c3.returnCode())
	}
	// Another source has its own bucket.
	connectV5From(t, "127.0.0.2", addr, v5Connect("elsewhere", true, 0))
	// The bucket refills at 1 a second.
	eventually(t, "a token", func() bool {
		c, err := tryConnectV5(t, addr, v5Connect("later", true, 0))
		return err == nil && c.ack.ReasonCode == 0
	})
}

// With the defaults, loopback is exempt from the connect rate: a local proxy's clients all come
// from it.
func TestConnectRateLoopbackExempt(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, func(c *config.Config) { c.MQTT.MaxConnectRate, c.MQTT.MaxConnectBurst = 1, 1 })
	for i := range 5 {
		c := connectV5(t, addr, v5Connect(fmt.Sprintf("lo-%d", i), true, 0))
		c.disconnect(0)
	}
}

// trySubscribe subscribes and returns the SUBACK, refusals included (paho.golang returns an error
// when every filter is refused).
func trySubscribe(t *testing.T, c *v5Client, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if sa == nil {
		t.Fatalf("%s: subscribe %+v: no SUBACK: %v", c.id, opts, err)
	}
	return sa
}
