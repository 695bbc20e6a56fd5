package broker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestSessionBelongsToItsOwner: another user of the same vhost who knows a client id can
// neither resume nor kick the owner's session, with Clean Start 0 or 1, over 5.0 or 3.1.1; the
// owner's live connection, subscriptions and queued messages are untouched. It holds across a
// restart. A user deleted and re-created under the same name inherits nothing.
func TestSessionBelongsToItsOwner_MQTT_3_1_4_2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := mods(secure, func(cfg *config.Config) { cfg.Main.DataDir = dir })
	addr, srv := startBroker(t, mod)
	for _, u := range []string{"owner", "mallory"} {
		addUser(t, srv, u, "pw")
		grantAll(t, srv, u, "/")
	}
	pub := connectV5(t, addr, login("pub", "owner", "pw"))

	// The owner's persistent session, with a subscription and one queued message while offline.
	owner := connectV5(t, addr, withSession(login("dev-1", "owner", "pw"), false, 3600))
	owner.mustSub("dev/1/#")
	owner.disconnect(0)
	pub.mustPub("dev/1/cmd", "queued while offline")

	// Mallory knows the client id. Every form of CONNECT is refused with 0x87 / return code 5.
	for _, clean := range []bool{false, true} {
		c, err := tryConnectV5(t, addr, withSession(login("dev-1", "mallory", "pw"), clean, 3600))
		if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
			t.Fatalf("another user, v5 clean=%v: CONNACK %#x, want 0x87", clean, code)
		}
		if c.ack.SessionPresent {
			t.Fatal("a refusal disclosed a session")
		}
		c3, _ := tryConnectV3(t, addr, "dev-1", clean, v3Login("mallory", "pw"))
		if rc := c3.returnCode(); rc != 5 {
			t.Fatalf("another user, 3.1.1 clean=%v: return code %d, want 5 (not authorized)", clean, rc)
		}
	}

	// The owner resumes: the session is present with its subscription and its queued message.
	owner = connectV5(t, addr, withSession(login("dev-1", "owner", "pw"), false, 3600))
	if !owner.ack.SessionPresent {
		t.Fatal("the owner's session is gone after another user's attempts")
	}
	owner.expectFrom("dev/1/cmd", "queued while offline")
	// While the owner is connected, another user cannot kick it either.
	c, err := tryConnectV5(t, addr, withSession(login("dev-1", "mallory", "pw"), false, 0))
	if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("kick attempt: CONNACK %#x, want 0x87", code)
	}
	pub.mustPub("dev/1/live", "still here")
	owner.expectFrom("dev/1/live", "still here")
	owner.disconnect(0)

	// Across a restart the owner is still the owner.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	addr, srv = startBroker(t, mod)
	c, err = tryConnectV5(t, addr, withSession(login("dev-1", "mallory", "pw"), false, 3600))
	if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("after a restart, another user: CONNACK %#x, want 0x87", code)
	}
	owner = connectV5(t, addr, withSession(login("dev-1", "owner", "pw"), false, 3600))
	if !owner.ack.SessionPresent {
		t.Fatal("after a restart the owner's session is gone")
	}
	owner.disconnect(0)

	// Deleting the user ends its sessions; a user of the same name created later is another
	// subject and inherits nothing.
	if ok, err := srv.Dir().DeleteUser("owner"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	addUser(t, srv, "owner", "pw")
	grantAll(t, srv, "owner", "/")
	again := connectV5(t, addr, withSession(login("dev-1", "owner", "pw"), false, 3600))
	if again.ack.SessionPresent {
		t.Fatal("a re-created user inherited the deleted user's session")
	}
}

func withSession(cp *paho.Connect, clean bool, expiry uint32) *paho.Connect {
	cp.CleanStart = clean
	if expiry > 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(expiry)}
	}
	return cp
}

// TestQuickReconnect_MQTT_3_1_2_6: a client that ends with DISCONNECT and at once connects
// again under the same client id never resumes the session that ended by its own rules (3.1.1
// clean session, or v5 Session Expiry 0), and the will that DISCONNECT discarded is never
// published [MQTT-3.1.2-6], [MQTT-3.14.4-3], 3.1.2.11.2. Real clients, 100 rounds each.
func TestQuickReconnect_MQTT_3_1_2_6(t *testing.T) {
	t.Parallel()
	addr, _ := startBroker(t, nil)
	w := watcher(t, addr, "qr-watch", "will/#")
	const rounds = 100
	for i := range rounds {
		// 3.1.1: clean session with a will, DISCONNECT, and a new connection asking to resume.
		id := fmt.Sprintf("qr3-%d", i%4)
		a := connectV3(t, addr, id, true, func(o *mqtt.ClientOptions) { o.SetWill("will/"+id, "gone", 1, false) })
		if a.subscribe("qr/"+id, 1) != 1 {
			t.Fatal("subscribe")
		}
		a.disconnect() // DISCONNECT written, then closed (Disconnect(0) may close before writing it)
		b := connectV3(t, addr, id, false, nil)
		if b.sessionPresent() {
			t.Fatalf("round %d: 3.1.1 session present after a clean session ended with DISCONNECT", i)
		}
		b.disconnect()
		c5 := connectV3(t, addr, id, true, nil) // clean again: drop the persistent session b made
		c5.disconnect()

		// 5.0: Session Expiry 0, the same.
		id5 := fmt.Sprintf("qr5-%d", i%4)
		cp := v5Connect(id5, true, 0)
		cp.WillMessage = &paho.WillMessage{Topic: "will/" + id5, Payload: []byte("gone"), QoS: 1}
		x := connectV5(t, addr, cp)
		x.mustSub("qr/" + id5)
		x.disconnect(0)
		y := connectV5(t, addr, v5Connect(id5, false, 0))
		if y.ack.SessionPresent {
			t.Fatalf("round %d: v5 session present after a session with expiry 0 ended", i)
		}
		y.disconnect(0)
	}
	w.expectNoMsg() // no will, in any round: every one was discarded by DISCONNECT
}

// TestTakeoverStorm: many connections race for one client id, clean and persistent mixed, with
// wills, for several seconds (run it with -race). Afterwards the vhost still works: a new client
// connects, publishes and receives, and the management API answers.
func TestTakeoverStorm(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, func(cfg *config.Config) { cfg.Mgmt.Port = 1 })
	const workers = 12
	deadline := time.Now().Add(3 * time.Second)
	if testing.Short() {
		deadline = time.Now().Add(time.Second)
	}
	var connects, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				clean := (w+i)%2 == 0
				conn, err := net.DialTimeout("tcp", addr, waitTimeout)
				if err != nil {
					continue
				}
				cp := &paho.Connect{ClientID: "storm", CleanStart: clean, KeepAlive: 30,
					WillMessage: &paho.WillMessage{Topic: "storm/will", Payload: []byte("w")}}
				if !clean {
					cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(60)}
				}
				c := paho.NewClient(paho.ClientConfig{Conn: conn})
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				ack, err := c.Connect(ctx, cp)
				cancel()
				if err == nil && ack.ReasonCode == 0 {
					connects.Add(1)
					sctx, scancel := context.WithTimeout(context.Background(), time.Second)
					c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "storm/#", QoS: 1}}})
					scancel()
					if i%3 == 0 {
						c.Disconnect(&paho.Disconnect{})
					}
				} else {
					refused.Add(1)
				}
				if i%5 == 0 {
					conn.Close() // drop some without DISCONNECT
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("takeover storm: %d connects accepted, %d refused", connects.Load(), refused.Load())
	if connects.Load() < workers {
		t.Fatalf("only %d connects accepted in the storm", connects.Load())
	}
	// The vhost is not wedged.
	fresh := connectV5(t, addr, v5Connect("after-storm", true, 0))
	fresh.mustSub("after/#")
	fresh.mustPub("after/x", "alive")
	fresh.expectFrom("after/x", "alive")
	res, err := http.Get(srv.app.URL() + "/api/health/ready")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the API after the storm: %v %v", err, res)
	}
	res.Body.Close()
}
