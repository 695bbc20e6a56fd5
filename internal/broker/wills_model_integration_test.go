package broker_test

// The will model (will-and-expiry.md §4, docs/wills.md) as the named scenarios of §5 with real
// paho clients, 3.1.1 and 5.0 where both apply. A4–A8 (expiring and revoked JWTs) are in
// oauth_integration_test.go.

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// willBroker is a broker with user "dev" (password "pw", full permissions on "/") and a watcher
// of will/#.
func willBroker(t *testing.T, clk clock.Clock, mods ...func(*config.Config)) (string, *testBroker, *v5Client) {
	t.Helper()
	addr, srv := startBrokerOpts(t, func(cfg *config.Config) {
		for _, m := range mods {
			m(cfg)
		}
	}, app.Options{Clock: clk})
	addUser(t, srv, "dev", "pw")
	grantAll(t, srv, "dev", "/")
	return addr, srv, watcher(t, addr, "will-watch", "will/#")
}

func devWill(id string, clean bool, expiry, delay uint32, qos byte, retain bool) *paho.Connect {
	cp := login(id, "dev", "pw")
	cp.CleanStart = clean
	cp.WillMessage = &paho.WillMessage{Topic: "will/" + id, Payload: []byte("gone " + id), QoS: qos, Retain: retain}
	if delay > 0 {
		cp.WillProperties = &paho.WillProperties{WillDelayInterval: u32p(delay)}
	}
	if expiry > 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(expiry)}
	}
	return cp
}

func devWill3(id string, clean bool) func(*mqtt.ClientOptions) {
	return func(o *mqtt.ClientOptions) {
		v3Login("dev", "pw")(o)
		o.SetWill("will/"+id, "gone "+id, 1, false)
	}
}

// TestA1_WillRefusedAtConnect: a will topic the identity may not publish to → v5 CONNACK 0x87,
// 3.1.1 return code 5, nothing stored; a will on $SYS/uploadToken is refused too.
func TestA1_WillRefusedAtConnect(t *testing.T) {
	t.Parallel()
	addr, srv, _ := willBroker(t, nil)
	setTopicPerm(t, srv, "dev", "/", "^devices/", ".*")
	for _, topic := range []string{"admin/cmd", "$SYS/uploadToken"} {
		cp := login("a1", "dev", "pw")
		cp.CleanStart = false
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(600)}
		cp.WillMessage = &paho.WillMessage{Topic: topic, Payload: []byte("x")}
		c, err := tryConnectV5(t, addr, cp)
		if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
			t.Fatalf("will on %s: CONNACK %#x, want 0x87", topic, code)
		}
		c3, _ := tryConnectV3(t, addr, "a1-3", false, func(o *mqtt.ClientOptions) {
			v3Login("dev", "pw")(o)
			o.SetWill(topic, "x", 0, false)
		})
		if rc := c3.returnCode(); rc != 5 {
			t.Fatalf("3.1.1 will on %s: return code %d, want 5", topic, rc)
		}
	}
	if ss, _ := srv.Sessions("/"); len(ss) != 1 { // the watcher's only
		t.Fatalf("a refused CONNECT stored a session: %+v", ss)
	}
}

// TestA2_ExactlyOneWill: a socket reset publishes the will exactly once, at its QoS, retained
// when asked.
func TestA2_ExactlyOneWill(t *testing.T) {
	t.Parallel()
	addr, srv, _ := willBroker(t, nil)
	w := connectV5(t, addr, v5Connect("a2-watch", true, 0))
	w.subscribe(paho.SubscribeOptions{Topic: "will/#", QoS: 2})
	for _, qos := range []byte{0, 1, 2} {
		id := "a2-" + string('0'+qos)
		c := connectV5(t, addr, devWill(id, true, 0, 0, qos, qos == 2))
		c.drop()
		m := w.expectMsg()
		if m.Topic != "will/"+id || m.QoS != qos {
			t.Fatalf("will %q QoS %d, want will/%s at QoS %d", m.Topic, m.QoS, id, qos)
		}
	}
	w.expectNoMsg()
	if rs, _ := srv.Retained("/", "will/#", 0); len(rs) != 1 || rs[0].Topic != "will/a2-2" {
		t.Fatalf("retained wills %+v, want will/a2-2 only", rs)
	}
	c3 := connectV3(t, addr, "a2-3", true, devWill3("a2-3", true))
	c3.drop()
	w.expectFrom("will/a2-3", "gone a2-3")
	w.expectNoMsg()
}

// TestA3_DelayedWillEarnedAtLoss: a connection lost at t=0 whose token expires at t=10 s, with
// a Will Delay of 30 s (session expiry 60 s): the will is delivered at 30 s, earned at 0.
func TestA3_DelayedWillEarnedAtLoss(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := oauthtestServer(t, clk)
	addr, srv := oauthBroker(t, idp, clk)
	w := watcher(t, addr, "a3-w", "will/#")
	t0 := clk.Now()
	c := connectV5(t, addr, withWill(jwtPassword("a3", idp.Token(map[string]any{"scope": fullScope, "exp": t0.Add(10 * time.Second)})), "will/a3", 30))
	c.drop()
	eventually(t, "the session offline", func() bool { return vhostClients(srv, "/") == 1 })
	clk.Advance(29 * time.Second)
	clk.Wait()
	w.expectNoMsg()
	clk.Advance(time.Second)
	clk.Wait()
	w.expectFrom("will/a3", "gone a3")
	ev := srv.events.find(event.WillPublished, "a3")
	if len(ev) != 1 || ev[0].EarnedAt.Sub(t0) > time.Second {
		t.Fatalf("will events %+v, want earned at the loss (t=0), not at 30 s", ev)
	}
}

// TestA9_A10_PolicyAtSendTime: rights on devices/{username}/#: a will on admin/cmd is refused at
// CONNECT; a will allowed at CONNECT whose rights are narrowed before it is sent is not sent.
func TestA9_A10_PolicyAtSendTime(t *testing.T) {
	t.Parallel()
	addr, srv, w := willBroker(t, nil)
	setTopicPerm(t, srv, "dev", "/", "^(devices/{username}/|will/)", ".*")
	cp := login("a10", "dev", "pw")
	cp.WillMessage = &paho.WillMessage{Topic: "admin/cmd", Payload: []byte("x")}
	c, err := tryConnectV5(t, addr, cp)
	if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("A10: will outside devices/{username}/#: CONNACK %#x, want 0x87", code)
	}
	ok5 := connectV5(t, addr, devWill("a9", true, 0, 0, 1, false))
	ok3 := connectV3(t, addr, "a9-3", true, devWill3("a9-3", true))
	setTopicPerm(t, srv, "dev", "/", "^devices/{username}/", ".*") // wills no longer allowed
	ok5.drop()
	ok3.drop()
	eventually(t, "both wills suppressed", func() bool { return srv.WillsSuppressed(event.WillNotAuthorized) == 2 })
	w.expectNoMsg()
}

// TestA11_DisconnectCodes: DISCONNECT 0x00 discards the will [MQTT-3.14.4-3]; 0x04 publishes it.
func TestA11_DisconnectCodes(t *testing.T) {
	t.Parallel()
	addr, _, w := willBroker(t, nil)
	connectV5(t, addr, devWill("a11-0", true, 0, 0, 1, false)).disconnect(0)
	connectV5(t, addr, devWill("a11-4", true, 0, 0, 1, false)).disconnect(byte(packet.DisconnectWithWill))
	w.expectFrom("will/a11-4", "gone a11-4")
	w.expectNoMsg()
}

// TestA12_TakeoverSameSubject: Clean Start 0 with a Will Delay → the old will is not sent (the
// session is resumed within the delay); Clean Start 1 → sent; a 3.1.1 takeover → sent.
func TestA12_TakeoverSameSubject(t *testing.T) {
	t.Parallel()
	addr, srv, w := willBroker(t, nil)
	connectV5(t, addr, devWill("a12-r", false, 600, 30, 1, false))
	connectV5(t, addr, devWill("a12-r", false, 600, 30, 1, false)) // resumes: cancels the old will
	w.expectNoMsg()
	eventually(t, "the cancelled will reported", func() bool { return srv.WillsSuppressed(event.WillSessionResumed) == 1 })

	connectV5(t, addr, devWill("a12-c", false, 600, 30, 1, false))
	connectV5(t, addr, devWill("a12-c", true, 600, 30, 1, false)) // Clean Start 1 ends the session: sent
	w.expectFrom("will/a12-c", "gone a12-c")

	connectV3(t, addr, "a12-3", true, devWill3("a12-3", true))
	connectV3(t, addr, "a12-3", true, v3Login("dev", "pw"))
	w.expectFrom("will/a12-3", "gone a12-3")
}

// TestA13_TakeoverOtherSubject: a takeover attempt by another subject with Clean Start 0 is
// refused, and the original session and its will are untouched (the will still fires later).
func TestA13_TakeoverOtherSubject(t *testing.T) {
	t.Parallel()
	addr, srv, w := willBroker(t, nil)
	addUser(t, srv, "mallory", "pw")
	grantAll(t, srv, "mallory", "/")
	owner := connectV5(t, addr, devWill("a13", false, 600, 0, 1, false))
	cp := login("a13", "mallory", "pw")
	cp.CleanStart = false
	c, err := tryConnectV5(t, addr, cp)
	if code := connackCode(t, c, err); code != byte(packet.NotAuthorized) {
		t.Fatalf("takeover by another subject: CONNACK %#x, want 0x87", code)
	}
	w.expectNoMsg()
	owner.mustPub("a13/x", "still connected")
	owner.drop()
	w.expectFrom("will/a13", "gone a13")
}

// TestA15_NoRetryLoop: a suppressed will is reported once and removed; nothing retries it.
func TestA15_NoRetryLoop(t *testing.T) {
	t.Parallel()
	addr, srv, w := willBroker(t, nil)
	c := connectV5(t, addr, devWill("a15", false, 600, 0, 1, false))
	setTopicPerm(t, srv, "dev", "/", "^nothing$", ".*")
	c.drop()
	eventually(t, "the will suppressed", func() bool { return srv.WillsSuppressed(event.WillNotAuthorized) == 1 })
	grantAll(t, srv, "dev", "/")
	setTopicPerm(t, srv, "dev", "/", ".*", ".*") // allowed again: the will is gone, not retried
	time.Sleep(quiet)
	w.expectNoMsg()
	if n := len(srv.events.find(event.WillSuppressed, "a15")); n != 1 {
		t.Fatalf("%d suppression events, want exactly 1", n)
	}
	if ss, _ := srv.Sessions("/"); len(ss) != 2 || ss[0].Will != nil && ss[0].ClientID == "a15" {
		t.Fatalf("sessions %+v: the suppressed will must be gone", ss)
	}
}

// TestRotationIsNotRevocation: a changed password or a re-imported user with the same ID does
// not suppress a pending will; deleting the user does, even while the will is pending; a user
// re-created under the same name is another subject.
func TestRotationIsNotRevocation(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	addr, srv, w := willBroker(t, clk)
	for _, id := range []string{"rot-pw", "rot-del"} {
		connectV5(t, addr, devWill(id, false, 600, 30, 1, false)).drop()
	}
	eventually(t, "both sessions offline", func() bool { return vhostClients(srv, "/") == 1 })
	// Rotation: a new password, then the same user imported again (same ID).
	u, _ := auth.NewUser("dev", []byte("new-pw"), auth.Hasher{BcryptCost: bcrypt.MinCost})
	if _, err := srv.Dir().PutUser(u); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	clk.Wait()
	got := map[string]bool{w.expectMsg().Topic: true, w.expectMsg().Topic: true}
	if !got["will/rot-pw"] || !got["will/rot-del"] {
		t.Fatalf("after a password change: wills %v, want both", got)
	}

	// Deletion while a delayed will is pending: suppressed, and the sessions go with the user.
	addUser(t, srv, "dev", "pw") // the password back: still the same subject
	connectV5(t, addr, devWill("rot-gone", false, 600, 30, 1, false)).drop()
	eventually(t, "offline", func() bool { return vhostClients(srv, "/") == 1 })
	if ok, err := srv.Dir().DeleteUser("dev"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	eventually(t, "the pending will suppressed", func() bool { return srv.WillsSuppressed(event.WillDeletedSubject) == 1 })
	clk.Advance(31 * time.Second)
	clk.Wait()
	w.expectNoMsg()
	// Re-created: another subject, no session to inherit.
	addUser(t, srv, "dev", "pw")
	grantAll(t, srv, "dev", "/")
	if c := connectV5(t, addr, devWill("rot-gone", false, 600, 30, 1, false)); c.ack.SessionPresent {
		t.Fatal("a re-created user inherited a session")
	}
}
