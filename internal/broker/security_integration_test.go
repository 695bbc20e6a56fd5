package broker_test

// Integration tests of identity, virtual hosts and permissions (issue 5) with real clients:
// vhost isolation, vhost:user logins, refusals, LavinMQ's permission checks, topic permissions
// with their expansions, live permission changes, wills authorized when sent, the default user,
// imported hash formats, login rate limiting, persistence of definitions and vhost deletion.
//
// CONNACK codes: v5 0x86 Bad User Name or Password, 0x87 Not Authorized; 3.1.1 return codes 4
// and 5 [MQTT-3.1.4-2]. Denied actions: v5 PUBACK and SUBACK 0x87, 3.1.1 SUBACK 0x80, and for a
// 3.1.1 QoS 1 publish an acknowledgement without delivery [MQTT-3.3.5-2].

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/definitions"
	"github.com/turnstilemq/turnstile/internal/event"
)

// CONNACK and acknowledgement codes the tests expect.
const (
	rcBadCredentials  = 0x86 // v5 Bad User Name or Password
	rcNotAuthorized   = 0x87 // v5 Not Authorized (CONNACK, PUBACK, SUBACK)
	rc3BadCredentials = 4    // 3.1.1 Connection Refused, bad user name or password
	rc3NotAuthorized  = 5    // 3.1.1 Connection Refused, not authorized
	rc3SubFailure     = 0x80
)

// ---------------------------------------------------------------------------------------------
// Helpers

// noAnonymous turns anonymous access off, as it is by default outside this test harness.
func noAnonymous(cfg *config.Config) { cfg.MQTT.AllowAnonymous = false }

// secure turns anonymous access off and creates no default user: tests that do not log in as
// guest skip hashing its password at bcrypt's default cost (most of a second under -race).
func secure(cfg *config.Config) {
	cfg.MQTT.AllowAnonymous = false
	cfg.Main.DefaultPassword = ""
}

// mods combines configuration changes.
func mods(fs ...func(*config.Config)) func(*config.Config) {
	return func(cfg *config.Config) {
		for _, f := range fs {
			f(cfg)
		}
	}
}

// addUser creates a local user with a cheap bcrypt hash.
func addUser(t *testing.T, srv *testBroker, name, pw string, tags ...auth.Tag) {
	t.Helper()
	u, err := auth.NewUser(name, []byte(pw), auth.Hasher{BcryptCost: bcrypt.MinCost}, tags...)
	if err != nil {
		t.Fatalf("NewUser %s: %v", name, err)
	}
	if _, err := srv.Dir().PutUser(u); err != nil {
		t.Fatalf("PutUser %s: %v", name, err)
	}
}

// setPerm sets user's configure/write/read regexes on vhost.
func setPerm(t *testing.T, srv *testBroker, user, vhost, write, read string) {
	t.Helper()
	if err := srv.Dir().SetPermission(acl.Permission{User: user, Vhost: vhost, Configure: ".*", Write: write, Read: read}); err != nil {
		t.Fatalf("SetPermission %s@%s: %v", user, vhost, err)
	}
}

// grantAll gives user full permissions on vhost.
func grantAll(t *testing.T, srv *testBroker, user, vhost string) {
	t.Helper()
	setPerm(t, srv, user, vhost, ".*", ".*")
}

// setTopicPerm sets user's topic permission on vhost for the MQTT exchange.
func setTopicPerm(t *testing.T, srv *testBroker, user, vhost, write, read string) {
	t.Helper()
	if err := srv.Dir().SetTopicPermission(acl.TopicPermission{User: user, Vhost: vhost, Exchange: acl.DefaultExchange, Write: write, Read: read}); err != nil {
		t.Fatalf("SetTopicPermission %s@%s: %v", user, vhost, err)
	}
}

func addVhost(t *testing.T, srv *testBroker, name string) {
	t.Helper()
	if _, err := srv.Dir().AddVhost(name); err != nil {
		t.Fatalf("AddVhost %s: %v", name, err)
	}
}

// login is a clean v5 CONNECT with a user name and password.
func login(id, user, pw string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: user, UsernameFlag: true, Password: []byte(pw), PasswordFlag: true}
}

// v3Login sets the 3.1.1 client's user name and password.
func v3Login(user, pw string) func(*mqtt.ClientOptions) {
	return func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(pw) }
}

// connackCode returns the v5 CONNACK reason code of a connection attempt.
func connackCode(t *testing.T, c *v5Client, err error) byte {
	t.Helper()
	if c.ack == nil {
		t.Fatalf("%s: no CONNACK: %v", c.id, err)
	}
	return c.ack.ReasonCode
}

// expectRefusedV5 connects and expects CONNACK with code.
func expectRefusedV5(t *testing.T, addr string, cp *paho.Connect, code byte) {
	t.Helper()
	c, err := tryConnectV5(t, addr, cp)
	if got := connackCode(t, c, err); got != code {
		t.Fatalf("v5 CONNACK as %q: %#x, want %#x", cp.Username, got, code)
	}
}

// expectRefusedV3 connects with 3.1.1 and expects the CONNACK return code.
func expectRefusedV3(t *testing.T, addr, id string, mod func(*mqtt.ClientOptions), code byte) {
	t.Helper()
	c, err := tryConnectV3(t, addr, id, true, mod)
	if err == nil {
		t.Fatalf("3.1.1 connect %q accepted, want return code %d", id, code)
	}
	if got := c.returnCode(); got != code {
		t.Fatalf("3.1.1 connect %q: return code %d (%v), want %d", id, got, err, code)
	}
}

// tryPub publishes and returns the v5 PUBACK (QoS 1) reason code, refusals included.
func (c *v5Client) tryPub(topic string, qos byte, retain bool, payload string) byte {
	c.t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	r, err := c.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)})
	if r == nil {
		if err != nil || qos > 0 {
			c.t.Fatalf("%s: publish to %q: no acknowledgement: %v", c.id, topic, err)
		}
		return 0
	}
	return r.ReasonCode
}

// sub subscribes to one filter at QoS 1 and returns its SUBACK code, refusals included.
func (c *v5Client) sub(filter string) byte {
	c.t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		c.t.Fatalf("%s: subscribe %q: no SUBACK: %v", c.id, filter, err)
	}
	if len(sa.Reasons) != 1 {
		c.t.Fatalf("%s: SUBACK %v for one filter", c.id, sa.Reasons)
	}
	return sa.Reasons[0]
}

// mustSub subscribes and fails unless the subscription is granted.
func (c *v5Client) mustSub(filter string) {
	c.t.Helper()
	if code := c.sub(filter); code >= 0x80 {
		c.t.Fatalf("%s: SUBACK %#x for %q, want granted", c.id, code, filter)
	}
}

// mustPub publishes at QoS 1 and fails on a refusal.
func (c *v5Client) mustPub(topic, payload string) {
	c.t.Helper()
	if code := c.tryPub(topic, 1, false, payload); code >= 0x80 {
		c.t.Fatalf("%s: PUBACK %#x for %q, want success", c.id, code, topic)
	}
}

// expectFrom waits for the next message and checks its topic and payload.
func (c *v5Client) expectFrom(topic, payload string) {
	c.t.Helper()
	m := c.expectMsg()
	if m.Topic != topic || string(m.Payload) != payload {
		c.t.Fatalf("%s: got %q on %q, want %q on %q", c.id, m.Payload, m.Topic, payload, topic)
	}
}

func (c *v3Client) expectFrom(topic, payload string) {
	c.t.Helper()
	m := c.expectMsg()
	if m.Topic() != topic || string(m.Payload()) != payload {
		c.t.Fatalf("%s: got %q on %q, want %q on %q", c.id, m.Payload(), m.Topic(), payload, topic)
	}
}

// expectQuiet proves, in one quiet period for all of them, that none of the clients receives a
// message.
func expectQuiet(t *testing.T, v5 []*v5Client, v3 []*v3Client) {
	t.Helper()
	time.Sleep(quiet)
	for _, c := range v5 {
		select {
		case m := <-c.msgs:
			t.Errorf("%s: unexpected message on %q: %q", c.id, m.Topic, m.Payload)
		default:
		}
	}
	for _, c := range v3 {
		select {
		case m := <-c.msgs:
			t.Errorf("%s: unexpected message on %q: %q", c.id, m.Topic(), m.Payload())
		default:
		}
	}
}

func vhostClients(srv *testBroker, name string) int {
	v := srv.Vhost(name)
	if v == nil {
		return -1
	}
	return v.Stats().ClientsConnected
}

// ---------------------------------------------------------------------------------------------
// 1. Vhost isolation

func TestVhostIsolation(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, secure)
	addVhost(t, srv, "b")
	addUser(t, srv, "alice", "pw")
	grantAll(t, srv, "alice", "/")
	grantAll(t, srv, "alice", "b")

	// Retained messages on the same topic in each vhost, before anyone subscribes.
	pa := connectV5(t, addr, login("pub-a", "alice", "pw"))
	pb := connectV5(t, addr, login("pub-b", "b:alice", "pw"))
	if code := pa.tryPub("r/t", 1, true, "slash"); code >= 0x80 {
		t.Fatalf("retained publish in /: %#x", code)
	}
	if code := pb.tryPub("r/t", 1, true, "bee"); code >= 0x80 {
		t.Fatalf("retained publish in b: %#x", code)
	}

	// The same client id in both vhosts: no takeover.
	sa := connectV5(t, addr, login("dev", "alice", "pw"))
	sb := connectV5(t, addr, login("dev", "b:alice", "pw"))
	eventually(t, "client dev and a publisher in each vhost", func() bool {
		return vhostClients(srv, "/") == 2 && vhostClients(srv, "b") == 2
	})
	select {
	case d := <-sa.discs:
		t.Fatalf("client dev in / got DISCONNECT %#x when dev connected to b: a takeover across vhosts", d.ReasonCode)
	default:
	}

	// Each sees only its own vhost's retained message.
	sa.mustSub("r/#")
	sa.expectFrom("r/t", "slash")
	sb.mustSub("r/#")
	sb.expectFrom("r/t", "bee")

	// The same topic: no message crosses, in either direction.
	sa.mustSub("t")
	sb.mustSub("t")
	pa.mustPub("t", "from /")
	pb.mustPub("t", "from b")
	sa.expectFrom("t", "from /")
	sb.expectFrom("t", "from b")

	// 3.1.1 clients with one client id in both vhosts are isolated the same way.
	v3a := connectV3(t, addr, "v3", true, v3Login("alice", "pw"))
	v3b := connectV3(t, addr, "v3", true, v3Login("b:alice", "pw"))
	if code := v3a.subscribe("t", 1); code != 1 {
		t.Fatalf("3.1.1 SUBACK %#x", code)
	}
	if code := v3b.subscribe("t", 1); code != 1 {
		t.Fatalf("3.1.1 SUBACK %#x", code)
	}
	v3b.pub("t", 1, false, "v3 in b")
	v3b.expectFrom("t", "v3 in b")
	sb.expectFrom("t", "v3 in b")
	select {
	case err := <-v3a.lost:
		t.Fatalf("3.1.1 client v3 in / lost its connection when v3 connected to b: %v", err)
	default:
	}

	// The first 'dev' is still connected and served, and what was published in b before this
	// did not reach it: the next message it and v3 in / receive is this one.
	select {
	case d := <-sa.discs:
		t.Fatalf("client dev in / disconnected (%#x)", d.ReasonCode)
	default:
	}
	pa.mustPub("t", "again")
	sa.expectFrom("t", "again")
	v3a.expectFrom("t", "again")
}

// ---------------------------------------------------------------------------------------------
// 2. Logins

func TestLogins(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, secure)
	addVhost(t, srv, "b")
	addUser(t, srv, "alice", "pw")
	grantAll(t, srv, "alice", "/")
	grantAll(t, srv, "alice", "b")
	addUser(t, srv, "carol", "pw")
	grantAll(t, srv, "carol", "b") // carol has nothing on "/"

	// The successful logins come first: every refused one counts towards the login rate limit
	// of 127.0.0.1.
	t.Run("vhost:user selects the vhost", func(t *testing.T) {
		connectV5(t, addr, login("c1", "b:carol", "pw"))
		connectV3(t, addr, "c2", true, v3Login("b:carol", "pw"))
		eventually(t, "two clients in vhost b", func() bool { return vhostClients(srv, "b") == 2 })
		if n := vhostClients(srv, "/"); n != 0 {
			t.Fatalf("%d clients in /, want 0", n)
		}
		// No colon: default_vhost, "/".
		connectV5(t, addr, login("a1", "alice", "pw"))
		eventually(t, "alice in /", func() bool { return vhostClients(srv, "/") == 1 })
	})
	t.Run("split at the first colon", func(t *testing.T) {
		addVhost(t, srv, "x")
		addUser(t, srv, "y:z", "pw") // a user name with a colon needs the vhost prefix
		grantAll(t, srv, "y:z", "x")
		connectV5(t, addr, login("yz", "x:y:z", "pw"))
		eventually(t, "y:z in vhost x", func() bool { return vhostClients(srv, "x") == 1 })
	})

	t.Run("no permission on the vhost", func(t *testing.T) {
		// carol without a prefix asks for "/", where she has no permissions.
		expectRefusedV5(t, addr, login("p5", "carol", "pw"), rcNotAuthorized)
		expectRefusedV3(t, addr, "p3", v3Login("carol", "pw"), rc3NotAuthorized)
	})
	t.Run("nonexistent vhost", func(t *testing.T) {
		// Refused as a missing permission is: the client is not told which.
		expectRefusedV5(t, addr, login("n5", "nosuch:alice", "pw"), rcNotAuthorized)
		expectRefusedV3(t, addr, "n3", v3Login("nosuch:alice", "pw"), rc3NotAuthorized)
	})
	t.Run("wrong password [MQTT-3.1.4-2]", func(t *testing.T) {
		expectRefusedV5(t, addr, login("w5", "alice", "nope"), rcBadCredentials)
		expectRefusedV3(t, addr, "w3", v3Login("b:alice", "nope"), rc3BadCredentials)
	})
	t.Run("unknown user", func(t *testing.T) {
		expectRefusedV5(t, addr, login("u5", "mallory", "pw"), rcBadCredentials)
	})
	t.Run("anonymous refused when allow_anonymous=false", func(t *testing.T) {
		// No provider accepts a CONNECT without a user name: bad user name or password.
		expectRefusedV5(t, addr, v5Connect("a5", true, 0), rcBadCredentials)
		expectRefusedV3(t, addr, "a3", nil, rc3BadCredentials)
	})
	t.Run("good login still works", func(t *testing.T) {
		connectV5(t, addr, login("ok5", "b:alice", "pw")) // late: five failures from 127.0.0.1
		eventually(t, "alice in vhost b", func() bool { return vhostClients(srv, "b") == 1 })
	})
}

func TestLoginDefaultVhost(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, mods(secure, func(cfg *config.Config) { cfg.MQTT.DefaultVhost = "b" }))
	if srv.Vhost("b") == nil {
		t.Fatalf("default_vhost b was not created at start")
	}
	addUser(t, srv, "alice", "pw")
	grantAll(t, srv, "alice", "b")
	c := connectV5(t, addr, login("c1", "alice", "pw"))
	connectV3(t, addr, "c2", true, v3Login("alice", "pw"))
	eventually(t, "two clients in vhost b", func() bool { return vhostClients(srv, "b") == 2 })
	if n := vhostClients(srv, "/"); n != 0 {
		t.Fatalf("%d clients in /, want 0", n)
	}
	// The explicit prefix lands in the same vhost.
	d := connectV5(t, addr, login("c3", "b:alice", "pw"))
	d.mustSub("x")
	c.mustPub("x", "same vhost")
	d.expectFrom("x", "same vhost")
	// "/" must be asked for by name, and alice has no permissions there.
	expectRefusedV5(t, addr, login("c4", "/:alice", "pw"), rcNotAuthorized)
}

// ---------------------------------------------------------------------------------------------
// 3. permission_check_enabled

func permCheck(on bool) func(*config.Config) {
	return func(cfg *config.Config) { cfg.MQTT.PermissionCheckEnabled = on }
}

// TestPermissionCheckDisabled runs with allow_anonymous = true (the harness default), which
// also proves anonymous access when it is enabled.
func TestPermissionCheckDisabled(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, mods(permCheck(false), func(cfg *config.Config) { cfg.Main.DefaultPassword = "" }))

	t.Run("any user with access", func(t *testing.T) {
		addUser(t, srv, "nobody", "pw")
		// Regexes that match nothing: with the check off, access to the vhost is what counts.
		if err := srv.Dir().SetPermission(acl.Permission{User: "nobody", Vhost: "/", Configure: "^$", Write: "^$", Read: "^$"}); err != nil {
			t.Fatal(err)
		}
		c := connectV5(t, addr, login("n1", "nobody", "pw"))
		c.mustSub("x/#")
		c.mustPub("x/1", "ok")
		c.expectFrom("x/1", "ok")
		v3 := connectV3(t, addr, "n3", true, v3Login("nobody", "pw"))
		if code := v3.subscribe("x/#", 1); code != 1 {
			t.Fatalf("3.1.1 SUBACK %#x, want 1", code)
		}
		v3.pub("x/2", 1, false, "ok3")
		v3.expectFrom("x/2", "ok3")
		c.expectFrom("x/2", "ok3")
	})
	t.Run("anonymous allowed when allow_anonymous=true", func(t *testing.T) {
		s := connectV5(t, addr, v5Connect("anon-sub", true, 0))
		s.mustSub("a/#")
		p := connectV3(t, addr, "anon3", true, nil)
		p.pub("a/b", 1, false, "hi")
		s.expectFrom("a/b", "hi")
	})
	if p, s := srv.Denied(); p != 0 || s != 0 {
		t.Fatalf("denials counted with the check off: publish %d, subscribe %d", p, s)
	}
}

func TestPermissionCheckEnabled(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, mods(secure, permCheck(true)))
	addUser(t, srv, "full", "pw")
	grantAll(t, srv, "full", "/")
	addUser(t, srv, "nowrite", "pw")
	setPerm(t, srv, "nowrite", "/", `^amq\.`, ".*") // write does not match mqtt.default
	addUser(t, srv, "noread", "pw")
	setPerm(t, srv, "noread", "/", ".*", `^amq\.`) // read does not match mqtt.default
	addUser(t, srv, "nosession", "pw")
	setPerm(t, srv, "nosession", "/", `^mqtt\.default$`, ".*") // write misses mqtt.<client_id>

	watcher := connectV5(t, addr, login("watcher", "full", "pw"))
	watcher.mustSub("#")

	t.Run("full permissions", func(t *testing.T) {
		c := connectV5(t, addr, login("f1", "full", "pw"))
		c.mustSub("f/#")
		c.mustPub("f/1", "ok")
		c.expectFrom("f/1", "ok")
		watcher.expectFrom("f/1", "ok")
	})

	t.Run("write not matching mqtt.default", func(t *testing.T) {
		pub0, _ := srv.Denied()
		c := connectV5(t, addr, login("w5", "nowrite", "pw"))
		if code := c.tryPub("denied/v5", 1, false, "x"); code != rcNotAuthorized {
			t.Fatalf("v5 PUBACK %#x, want 0x87", code)
		}
		// 3.1.1 QoS 1: acknowledged, not delivered [MQTT-3.3.5-2].
		v3 := connectV3(t, addr, "w3", true, v3Login("nowrite", "pw"))
		v3.pub("denied/v3", 1, false, "x")
		// A marker published after them is the next message: nothing denied was delivered.
		watcher.mustPub("marker/w", "m")
		watcher.expectFrom("marker/w", "m")
		// Subscribing needs read on mqtt.default and write on mqtt.<client_id>: nowrite has
		// the first only.
		if code := c.sub("w/#"); code != rcNotAuthorized {
			t.Fatalf("SUBACK %#x for a user without write on mqtt.<client_id>, want 0x87", code)
		}
		if pub, _ := srv.Denied(); pub != pub0+2 {
			t.Fatalf("publish denials %d, want %d", pub, pub0+2)
		}
	})

	t.Run("read not matching mqtt.default", func(t *testing.T) {
		_, sub0 := srv.Denied()
		c := connectV5(t, addr, login("r5", "noread", "pw"))
		if code := c.sub("r/#"); code != rcNotAuthorized {
			t.Fatalf("v5 SUBACK %#x, want 0x87", code)
		}
		v3 := connectV3(t, addr, "r3", true, v3Login("noread", "pw"))
		if code := v3.subscribe("r/#", 1); code != rc3SubFailure {
			t.Fatalf("3.1.1 SUBACK %#x, want 0x80", code)
		}
		// Not subscribed: a message on r/x reaches neither.
		c.mustPub("r/x", "published by noread") // write is allowed
		watcher.expectFrom("r/x", "published by noread")
		expectQuiet(t, []*v5Client{c}, []*v3Client{v3})
		if _, sub := srv.Denied(); sub != sub0+2 {
			t.Fatalf("subscribe denials %d, want %d", sub, sub0+2)
		}
	})

	t.Run("write not matching mqtt.<client_id>", func(t *testing.T) {
		_, sub0 := srv.Denied()
		c := connectV5(t, addr, login("s5", "nosession", "pw"))
		if code := c.sub("s/#"); code != rcNotAuthorized {
			t.Fatalf("v5 SUBACK %#x, want 0x87", code)
		}
		v3 := connectV3(t, addr, "s3", true, v3Login("nosession", "pw"))
		if code := v3.subscribe("s/#", 1); code != rc3SubFailure {
			t.Fatalf("3.1.1 SUBACK %#x, want 0x80", code)
		}
		c.mustPub("s/x", "publish allowed") // write matches mqtt.default
		watcher.expectFrom("s/x", "publish allowed")
		if _, sub := srv.Denied(); sub != sub0+2 {
			t.Fatalf("subscribe denials %d, want %d", sub, sub0+2)
		}
	})
}

// ---------------------------------------------------------------------------------------------
// 4. Topic permissions

func TestTopicPermissions(t *testing.T) {
	t.Parallel()
	for _, check := range []bool{false, true} {
		t.Run(fmt.Sprintf("permission_check_enabled=%v", check), func(t *testing.T) {
			t.Parallel()
			addr, srv := startBroker(t, mods(secure, permCheck(check)))
			for _, u := range []string{"dev", "d.v"} { // d.v: a user name with a metacharacter
				addUser(t, srv, u, "pw")
				grantAll(t, srv, u, "/")
				setTopicPerm(t, srv, u, "/", "^devices/{client_id}/", "^devices/{username}/")
			}
			addUser(t, srv, "ops", "pw")
			grantAll(t, srv, "ops", "/")
			watcher := connectV5(t, addr, login("watcher", "ops", "pw"))
			watcher.mustSub("devices/#")

			c := connectV5(t, addr, login("c1", "dev", "pw"))
			// Publish: the topic against the write regex, {client_id} expanded.
			c.mustPub("devices/c1/temp", "own")
			watcher.expectFrom("devices/c1/temp", "own")
			if code := c.tryPub("devices/c2/temp", 1, false, "other"); code != rcNotAuthorized {
				t.Fatalf("publish to another client's subtree: PUBACK %#x, want 0x87", code)
			}
			if code := c.tryPub("devices/dev/temp", 1, false, "user subtree"); code != rcNotAuthorized {
				t.Fatalf("publish to the user's (read-only) subtree: PUBACK %#x, want 0x87", code)
			}
			// Subscribe: the filter against the read regex, {username} expanded.
			for _, tc := range []struct {
				filter string
				want   byte
			}{
				{"devices/dev/#", 1},
				{"devices/dev/temp", 1},
				{"devices/c1/#", rcNotAuthorized}, // the write subtree is not readable
				{"devices/+/temp", rcNotAuthorized},
				{"devices/#", rcNotAuthorized},
				{"#", rcNotAuthorized},
			} {
				if got := c.sub(tc.filter); got != tc.want {
					t.Errorf("SUBACK for %q: %#x, want %#x", tc.filter, got, tc.want)
				}
			}
			// 3.1.1: the same rules, SUBACK 0x80, and a denied QoS 1 publish is acknowledged
			// without delivery [MQTT-3.3.5-2].
			v3 := connectV3(t, addr, "c3", true, v3Login("dev", "pw"))
			if code := v3.subscribe("devices/other/#", 1); code != rc3SubFailure {
				t.Fatalf("3.1.1 SUBACK %#x, want 0x80", code)
			}
			if code := v3.subscribe("devices/dev/#", 1); code != 1 {
				t.Fatalf("3.1.1 SUBACK %#x, want 1", code)
			}
			v3.pub("devices/c1/x", 1, false, "not mine in 3.1.1")
			v3.pub("devices/c3/x", 1, false, "mine")
			watcher.expectFrom("devices/c3/x", "mine") // and not the one before it

			// Expansion escapes metacharacters: a client id cannot widen its owner's rights.
			for _, id := range []string{".*", "x|", "c1|.*", "(.*)", "[a-z]*"} {
				m := connectV5(t, addr, login(id, "dev", "pw"))
				for _, topic := range []string{"devices/c9/t", "devices/" + id + "x/t"} {
					if code := m.tryPub(topic, 1, false, "widened"); code != rcNotAuthorized {
						t.Fatalf("client id %q: publish to %q: PUBACK %#x, want 0x87", id, topic, code)
					}
				}
				m.mustPub("devices/"+id+"/t", "literal")
				watcher.expectFrom("devices/"+id+"/t", "literal")
			}
			// ... nor a user name.
			dv := connectV5(t, addr, login("dv1", "d.v", "pw"))
			if code := dv.sub("devices/dxv/#"); code != rcNotAuthorized {
				t.Fatalf("user d.v subscribing to devices/dxv/#: SUBACK %#x, want 0x87", code)
			}
			dv.mustSub("devices/d.v/#")

			// A level separator or a wildcard in a substituted value is refused, not escaped:
			// client id "c1/x" would reach into client c1's subtree, user "d/v" into user d's.
			// Such a client gets nothing from a rule naming the variable.
			cx := connectV5(t, addr, login("c1/x", "dev", "pw"))
			if code := cx.tryPub("devices/c1/x/t", 1, false, "inside c1"); code != rcNotAuthorized {
				t.Fatalf("client id c1/x publishing to devices/c1/x/t: PUBACK %#x, want 0x87", code)
			}
			addUser(t, srv, "d/v", "pw")
			grantAll(t, srv, "d/v", "/")
			setTopicPerm(t, srv, "d/v", "/", "^devices/{client_id}/", "^devices/{username}/")
			ds := connectV5(t, addr, login("ds1", "d/v", "pw"))
			if code := ds.sub("devices/d/v/#"); code != rcNotAuthorized {
				t.Fatalf("user d/v subscribing to devices/d/v/#: SUBACK %#x, want 0x87", code)
			}
			// User names with + # or NUL are refused outright (they would act as wildcards).
			for _, name := range []string{"a+b", "#", "x\x00y"} {
				u, _ := auth.NewUser(name, []byte("pw"), auth.Hasher{BcryptCost: bcrypt.MinCost})
				if _, err := srv.Dir().PutUser(u); err == nil {
					t.Fatalf("user %q created", name)
				}
			}

			if pub, sub := srv.Denied(); pub != 2+1+10+1 || sub != 4+1+1+1 {
				t.Fatalf("denials counted: publish %d, subscribe %d; want 14, 7", pub, sub)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 5. Live permission changes

// liveCase is one live permission change: a subscriber of user that must stop receiving, or a
// publisher of user whose next publish must be refused.
type liveCase struct {
	name       string
	user       string
	publisher  bool
	markerKept bool // subscriber: its <user>/marker/# subscription survives the change
	change     func(t *testing.T, srv *testBroker)
}

// runLiveCases sets every case up and proves it works, applies every change, then proves each
// one took effect for the very next message. The cases have their own users and topics, so one
// broker and one quiet period serve them all.
//
// A subscriber case subscribes user to <user>/live/# (v5 and 3.1.1) and <user>/marker/# (v5);
// after the change ops publishes on both. A publisher case publishes as user (v5 and 3.1.1) to
// <user>/live, watched by ops; after the change its v5 publish must get PUBACK 0x87 and neither
// publish may be delivered: ops's marker, published after them, must be the next message.
func runLiveCases(t *testing.T, addr string, srv *testBroker, cases []liveCase) {
	t.Helper()
	type state struct {
		s, w    *v5Client // subscriber, or watcher of a publisher case
		pub     *v5Client // publishes as ops (subscriber case) or as user (publisher case)
		v3      *v3Client // 3.1.1 subscriber, or 3.1.1 publisher
		opsPub  *v5Client
		topic   string
		markerT string
	}
	ops := connectV5(t, addr, login("ops-pub", "ops", "pw"))
	st := make([]state, len(cases))
	for i, lc := range cases {
		addUser(t, srv, lc.user, "pw")
		grantAll(t, srv, lc.user, "/")
		x := &st[i]
		x.opsPub = ops
		x.topic, x.markerT = lc.user+"/live", lc.user+"/marker"
		if lc.publisher {
			x.w = connectV5(t, addr, login("watch-"+lc.user, "ops", "pw"))
			x.w.mustSub(lc.user + "/#")
			x.pub = connectV5(t, addr, login("w5-"+lc.user, lc.user, "pw"))
			x.v3 = connectV3(t, addr, "w3-"+lc.user, true, v3Login(lc.user, "pw"))
			x.pub.mustPub(x.topic, "v5 before")
			x.w.expectFrom(x.topic, "v5 before")
			x.v3.pub(x.topic, 1, false, "v3 before")
			x.w.expectFrom(x.topic, "v3 before")
			continue
		}
		setTopicPerm(t, srv, lc.user, "/", ".*", "^"+lc.user+"/")
		x.pub = ops
		x.s = connectV5(t, addr, login("sub-"+lc.user, lc.user, "pw"))
		x.s.mustSub(x.topic + "/#")
		x.s.mustSub(x.markerT + "/#")
		x.v3 = connectV3(t, addr, "sub3-"+lc.user, true, v3Login(lc.user, "pw"))
		if code := x.v3.subscribe(x.topic+"/#", 1); code != 1 {
			t.Fatalf("%s: 3.1.1 SUBACK %#x", lc.name, code)
		}
		ops.mustPub(x.topic+"/1", "before")
		x.s.expectFrom(x.topic+"/1", "before")
		x.v3.expectFrom(x.topic+"/1", "before")
	}

	for _, lc := range cases {
		lc.change(t, srv)
	}

	var quietV5 []*v5Client
	var quietV3 []*v3Client
	for i, lc := range cases {
		x := &st[i]
		if lc.publisher {
			if code := x.pub.tryPub(x.topic, 1, false, "v5 after"); code != rcNotAuthorized {
				t.Errorf("%s: v5 publish after the change: PUBACK %#x, want 0x87", lc.name, code)
			}
			x.v3.pub(x.topic, 1, false, "v3 after") // acknowledged, not delivered [MQTT-3.3.5-2]
			ops.mustPub(x.markerT, "m")
			if m := x.w.expectMsg(); m.Topic != x.markerT {
				t.Errorf("%s: %q on %q delivered after the change", lc.name, m.Payload, m.Topic)
			}
			continue
		}
		ops.mustPub(x.topic+"/2", "after") // the first publish after the change
		ops.mustPub(x.markerT+"/1", "m")
		if lc.markerKept {
			if m := x.s.expectMsg(); m.Topic != x.markerT+"/1" {
				t.Errorf("%s: %q on %q delivered after the change", lc.name, m.Payload, m.Topic)
			}
		} else {
			quietV5 = append(quietV5, x.s)
		}
		quietV3 = append(quietV3, x.v3)
	}
	expectQuiet(t, quietV5, quietV3)
}

func TestLivePermissionChanges(t *testing.T) {
	t.Parallel()
	t.Run("permission_check_enabled=false", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, mods(secure, permCheck(false)))
		addUser(t, srv, "ops", "pw")
		grantAll(t, srv, "ops", "/")
		runLiveCases(t, addr, srv, []liveCase{
			{name: "subscriber: topic read narrowed", user: "r1", markerKept: true, change: func(t *testing.T, srv *testBroker) {
				setTopicPerm(t, srv, "r1", "/", ".*", "^r1/marker/")
			}},
			{name: "subscriber: topic read replaced by one matching nothing", user: "r2", change: func(t *testing.T, srv *testBroker) {
				setTopicPerm(t, srv, "r2", "/", ".*", "^$")
			}},
			// Without a permission the user has no access to the vhost, and with the check off
			// access to the vhost is what allows publishing and subscribing.
			{name: "subscriber: permission deleted", user: "r3", change: func(t *testing.T, srv *testBroker) {
				srv.Dir().DeletePermission("r3", "/")
			}},
			{name: "publisher: topic write narrowed", user: "w1", publisher: true, change: func(t *testing.T, srv *testBroker) {
				setTopicPerm(t, srv, "w1", "/", "^other/", ".*")
			}},
			{name: "publisher: permission deleted", user: "w2", publisher: true, change: func(t *testing.T, srv *testBroker) {
				srv.Dir().DeletePermission("w2", "/")
			}},
		})
	})
	t.Run("permission_check_enabled=true", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, mods(secure, permCheck(true)))
		addUser(t, srv, "ops", "pw")
		grantAll(t, srv, "ops", "/")
		runLiveCases(t, addr, srv, []liveCase{
			{name: "subscriber: read regex narrowed", user: "r4", change: func(t *testing.T, srv *testBroker) {
				setPerm(t, srv, "r4", "/", ".*", `^amq\.`)
			}},
			{name: "subscriber: permission deleted", user: "r5", change: func(t *testing.T, srv *testBroker) {
				srv.Dir().DeletePermission("r5", "/")
			}},
			{name: "subscriber: topic read narrowed", user: "r6", markerKept: true, change: func(t *testing.T, srv *testBroker) {
				setTopicPerm(t, srv, "r6", "/", ".*", "^r6/marker/")
			}},
			{name: "publisher: write regex narrowed", user: "w3", publisher: true, change: func(t *testing.T, srv *testBroker) {
				setPerm(t, srv, "w3", "/", `^amq\.`, ".*")
			}},
			{name: "publisher: topic write narrowed", user: "w4", publisher: true, change: func(t *testing.T, srv *testBroker) {
				setTopicPerm(t, srv, "w4", "/", "^other/", ".*")
			}},
		})
	})
}

// ---------------------------------------------------------------------------------------------
// 6. Wills are authorized when sent

func TestWillAuthorization(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, secure)
	addUser(t, srv, "ops", "pw")
	grantAll(t, srv, "ops", "/")
	// The watcher's own permissions allow reading every will topic.
	watcher := connectV5(t, addr, login("watch", "ops", "pw"))
	watcher.mustSub("w/#")
	willUser := func(user string) {
		addUser(t, srv, user, "pw")
		grantAll(t, srv, user, "/")
		setTopicPerm(t, srv, user, "/", "^w/", ".*")
	}
	v5Will := func(id, user string) *paho.Connect {
		cp := login(id, user, "pw")
		cp.WillMessage = &paho.WillMessage{Topic: "w/" + id, QoS: 1, Payload: []byte("gone " + id)}
		return cp
	}
	v3Will := func(id, user string) func(*mqtt.ClientOptions) {
		return func(o *mqtt.ClientOptions) {
			v3Login(user, "pw")(o)
			o.SetWill("w/"+id, "gone "+id, 1, false)
		}
	}

	t.Run("control: delivered", func(t *testing.T) {
		willUser("wc")
		c := connectV5(t, addr, v5Will("wc5", "wc"))
		c3 := connectV3(t, addr, "wc3", true, v3Will("wc3", "wc"))
		c.drop()
		watcher.expectFrom("w/wc5", "gone wc5")
		c3.drop()
		watcher.expectFrom("w/wc3", "gone wc3")
	})

	t.Run("write narrowed after CONNECT: not delivered", func(t *testing.T) {
		willUser("wn")
		c := connectV5(t, addr, v5Will("wn5", "wn"))
		c3 := connectV3(t, addr, "wn3", true, v3Will("wn3", "wn"))
		sup0 := srv.WillsSuppressed(event.WillNotAuthorized)
		setTopicPerm(t, srv, "wn", "/", "^elsewhere/", ".*")
		c.drop()
		c3.drop()
		// Both wills are judged, and refused, when they would be sent.
		eventually(t, "the two wills refused", func() bool { return srv.WillsSuppressed(event.WillNotAuthorized) == sup0+2 })
		eventually(t, "both will publishers gone", func() bool { return vhostClients(srv, "/") == 1 })
		// The control case proves a will arrives within the same time; a marker published
		// now is the next message the watcher receives.
		watcher.mustPub("w/marker", "m")
		watcher.expectFrom("w/marker", "m")
	})

	t.Run("not permitted at CONNECT: refused", func(t *testing.T) {
		willUser("wr")
		setTopicPerm(t, srv, "wr", "/", "^elsewhere/", ".*")
		expectRefusedV5(t, addr, v5Will("wr5", "wr"), rcNotAuthorized)
		expectRefusedV3(t, addr, "wr3", v3Will("wr3", "wr"), rc3NotAuthorized)
	})
}

// ---------------------------------------------------------------------------------------------
// 7. The default user

// remoteListener makes every accepted connection report a fixed, non-loopback peer address.
type remoteListener struct {
	net.Listener
	addr net.Addr
}

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, l.addr}, nil
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// serveExtra serves srv on ln as a listener named name until the test ends.
func serveExtra(t *testing.T, srv *testBroker, ln net.Listener, name string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln, broker.Listener{Name: name, Inspect: app.Inspect})
	}()
	t.Cleanup(func() { // runs before the broker's Close: this listener stops first
		ln.Close()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("Serve(%s) did not return after its listener closed", name)
		}
	})
}

func TestDefaultUser(t *testing.T) {
	t.Parallel()
	t.Run("guest/guest from loopback only", func(t *testing.T) {
		t.Parallel()
		addr, srv := startBroker(t, noAnonymous)
		c := connectV5(t, addr, login("g5", "guest", "guest"))
		connectV3(t, addr, "g3", true, v3Login("guest", "guest"))
		c.mustSub("g")
		c.mustPub("g", "guest")
		c.expectFrom("g", "guest")

		// The same broker seen from a non-loopback address (192.0.2.10, TEST-NET-1).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveExtra(t, srv, remoteListener{ln, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000}}, "tcp")
		raddr := ln.Addr().String()
		expectRefusedV5(t, raddr, login("r5", "guest", "guest"), rcNotAuthorized)
		expectRefusedV3(t, raddr, "r3", v3Login("guest", "guest"), rc3NotAuthorized)
		// Other users log in from there.
		addUser(t, srv, "alice", "pw")
		grantAll(t, srv, "alice", "/")
		connectV5(t, raddr, login("a5", "alice", "pw"))
	})

	t.Run("default_password changed", func(t *testing.T) {
		t.Parallel()
		addr, _ := startBroker(t, mods(noAnonymous, func(cfg *config.Config) { cfg.Main.DefaultPassword = "s3cret" }))
		expectRefusedV5(t, addr, login("g5", "guest", "guest"), rcBadCredentials)
		connectV5(t, addr, login("g5", "guest", "s3cret"))
	})
}

// ---------------------------------------------------------------------------------------------
// 8. Hash formats, imported from a RabbitMQ definitions export

// saltedHash is RabbitMQ's salted digest: base64(salt ‖ H(salt ‖ password)).
func saltedHash(h func() hash.Hash, pw string) string {
	salt := make([]byte, 4)
	rand.Read(salt)
	d := h()
	d.Write(salt)
	d.Write([]byte(pw))
	return base64.StdEncoding.EncodeToString(d.Sum(salt))
}

func TestImportedHashFormats(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, secure)
	bc, err := bcrypt.GenerateFromPassword([]byte("bcrypt-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := []map[string]any{
		// RabbitMQ's documented SHA-256 example: password "guest".
		{"name": "sha256", "password_hash": "+pHuxkR9fCyrrwXjOD4BP4XbzO3l8LJr8YkThMgJ0yVHFRE+",
			"hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []string{"administrator"}, "limits": map[string]any{}},
		{"name": "sha512", "password_hash": saltedHash(sha512.New, "sha512-pw"),
			"hashing_algorithm": "rabbit_password_hashing_sha512", "tags": "monitoring,management"},
		{"name": "md5", "password_hash": saltedHash(md5.New, "md5-pw"),
			"hashing_algorithm": "rabbit_password_hashing_md5", "tags": ""},
		{"name": "bcrypt", "password_hash": string(bc), "hashing_algorithm": "lavinmq_bcrypt", "tags": []string{}},
		// No hashing_algorithm: MD5, RabbitMQ's assumption for old exports.
		{"name": "legacy", "password_hash": saltedHash(md5.New, "legacy-pw"), "tags": ""},
		// No password: cannot log in with one.
		{"name": "nopw", "password_hash": nil, "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""},
	}
	perms := []map[string]any{}
	for _, u := range users {
		perms = append(perms, map[string]any{"user": u["name"], "vhost": "imported", "configure": ".*", "write": ".*", "read": ".*"})
	}
	raw, err := json.Marshal(map[string]any{
		"rabbit_version":   "3.13.7",
		"rabbitmq_version": "3.13.7",
		"users":            users,
		"vhosts":           []map[string]any{{"name": "/"}, {"name": "imported", "metadata": map[string]any{}}},
		"permissions":      perms,
		"topic_permissions": []map[string]any{
			{"user": "sha256", "vhost": "imported", "exchange": "mqtt.default", "write": "^sensors/", "read": "^sensors/"},
		},
		"queues": []any{}, "exchanges": []any{}, "bindings": []any{}, "policies": []any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := definitions.Parse(strings.NewReader(string(raw)), 0)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := srv.Dir().Import(d); err != nil {
		t.Fatalf("ImportDefinitions: %v", err)
	}

	good := map[string]string{"sha256": "guest", "sha512": "sha512-pw", "md5": "md5-pw", "bcrypt": "bcrypt-pw", "legacy": "legacy-pw"}
	order := []string{"sha256", "sha512", "md5", "bcrypt", "legacy"}
	for _, name := range order {
		connectV5(t, addr, login("ok-"+name, "imported:"+name, good[name]))
	}
	connectV3(t, addr, "ok3-sha256", true, v3Login("imported:sha256", "guest"))
	if u, _ := srv.Dir().User("sha512"); !u.HasTag(auth.TagMonitoring) || !u.HasTag(auth.TagManagement) {
		t.Errorf("tags of sha512 after import: %v", u.Tags)
	}

	// Permissions and topic permissions from the same file apply.
	s := connectV5(t, addr, login("watch", "imported:md5", "md5-pw"))
	s.mustSub("#")
	c := connectV5(t, addr, login("tp", "imported:sha256", "guest"))
	c.mustPub("sensors/1", "allowed")
	s.expectFrom("sensors/1", "allowed")
	if code := c.tryPub("actuators/1", 1, false, "denied"); code != rcNotAuthorized {
		t.Fatalf("publish outside the imported topic permission: PUBACK %#x, want 0x87", code)
	}
	if code := c.sub("actuators/#"); code != rcNotAuthorized {
		t.Fatalf("subscribe outside the imported topic permission: SUBACK %#x, want 0x87", code)
	}
	// No permission on "/" was imported for these users.
	expectRefusedV5(t, addr, login("noperm", "md5", "md5-pw"), rcNotAuthorized)

	// Wrong passwords are refused in every format, and so is the user without a hash. These come
	// last: each counts towards the login rate limit of 127.0.0.1.
	for _, name := range order {
		expectRefusedV5(t, addr, login("bad-"+name, "imported:"+name, good[name]+"x"), rcBadCredentials)
	}
	expectRefusedV5(t, addr, login("nopw", "imported:nopw", "anything"), rcBadCredentials)
}

// ---------------------------------------------------------------------------------------------
// 9. Login rate limiting

// Not parallel: it measures delays, so it runs before the parallel tests load the CPU.
func TestLoginRateLimiting(t *testing.T) {
	addr, srv := startBroker(t, secure)
	addUser(t, srv, "victim", "right")
	grantAll(t, srv, "victim", "/")

	attempt := func(i int, pw string) (time.Duration, *v5Client, error) {
		start := time.Now()
		c, err := tryConnectV5(t, addr, login(fmt.Sprintf("rl%d", i), "victim", pw))
		return time.Since(start), c, err
	}
	var took []time.Duration
	for i := 1; i <= 8; i++ {
		d, c, err := attempt(i, "wrong")
		if code := connackCode(t, c, err); code != rcBadCredentials {
			t.Fatalf("attempt %d: CONNACK %#x, want 0x86", i, code)
		}
		took = append(took, d)
	}
	t.Logf("failed attempts took %v", took)
	if took[0] >= 150*time.Millisecond {
		t.Errorf("1st failed attempt took %v, want < 150ms (no delay yet)", took[0])
	}
	if took[7] < 150*time.Millisecond {
		t.Errorf("8th failed attempt took %v, want >= 150ms (delayed after 7 failures)", took[7])
	}
	// The right password still logs in, possibly late.
	d, c, err := attempt(9, "right")
	if err != nil {
		t.Fatalf("correct password after failures refused: %v (connack %+v)", err, c.ack)
	}
	t.Logf("correct password took %v", d)
}

// ---------------------------------------------------------------------------------------------
// 10. Definitions survive a restart

func TestDefinitionsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := mods(noAnonymous, func(cfg *config.Config) { cfg.Main.DataDir = dir })
	_, srv := startBroker(t, mod)
	addVhost(t, srv, "kept")
	addUser(t, srv, "keeper", "pw", auth.TagMonitoring)
	grantAll(t, srv, "keeper", "kept")
	setTopicPerm(t, srv, "keeper", "kept", "^k/", "^k/")
	guest, ok := srv.Dir().User("guest")
	if !ok {
		t.Fatalf("no default user")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	addr2, srv2 := startBroker(t, mod)
	if srv2.Vhost("kept") == nil {
		t.Fatalf("vhost kept is gone after a restart; vhosts %v", srv2.Dir().Vhosts())
	}
	if u, ok := srv2.Dir().User("keeper"); !ok || !u.HasTag(auth.TagMonitoring) {
		t.Fatalf("user keeper after a restart: %+v, %v", u, ok)
	}
	// The default user was loaded, not created again with a new hash.
	if g, ok := srv2.Dir().User("guest"); !ok || g.PasswordHash != guest.PasswordHash {
		t.Fatalf("default user after a restart: %v, hash kept %v", ok, g.PasswordHash == guest.PasswordHash)
	}
	c := connectV5(t, addr2, login("k1", "kept:keeper", "pw"))
	c.mustSub("k/#")
	c.mustPub("k/1", "back")
	c.expectFrom("k/1", "back")
	if code := c.tryPub("other", 1, false, "x"); code != rcNotAuthorized {
		t.Fatalf("topic permission lost in the restart: PUBACK %#x, want 0x87", code)
	}
}

// ---------------------------------------------------------------------------------------------
// 11. Deleting a vhost

func TestDeleteVhost(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, secure)
	addVhost(t, srv, "tmp")
	addUser(t, srv, "alice", "pw")
	grantAll(t, srv, "alice", "tmp")
	grantAll(t, srv, "alice", "/")

	cp := login("keep", "tmp:alice", "pw")
	cp.CleanStart = false
	cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32p(3600)}
	c := connectV5(t, addr, cp)
	c.mustSub("x/#")
	if code := c.tryPub("ret/1", 1, true, "retained in tmp"); code >= 0x80 {
		t.Fatalf("retained publish: %#x", code)
	}
	v3 := connectV3(t, addr, "keep3", false, v3Login("tmp:alice", "pw"))
	// A client of "/" with the same client id is not touched.
	other := connectV5(t, addr, login("keep", "alice", "pw"))

	if ok, err := srv.Dir().DeleteVhost("tmp"); !ok || err != nil {
		t.Fatalf("DeleteVhost returned false")
	}
	if code := c.expectServerDisconnect(); code != 0x98 {
		t.Fatalf("DISCONNECT %#x, want 0x98 (administrative action)", code)
	}
	v3.expectLost()
	// Refused while it does not exist.
	expectRefusedV5(t, addr, login("gone", "tmp:alice", "pw"), rcNotAuthorized)

	// Recreated under the same name: no session, no retained message, no permissions.
	addVhost(t, srv, "tmp")
	expectRefusedV5(t, addr, login("noperm", "tmp:alice", "pw"), rcNotAuthorized)
	grantAll(t, srv, "alice", "tmp")
	c2 := connectV5(t, addr, cp)
	if c2.ack.SessionPresent {
		t.Fatalf("SessionPresent=1 in a recreated vhost")
	}
	c3 := connectV3(t, addr, "keep3", false, v3Login("tmp:alice", "pw"))
	if c3.sessionPresent() {
		t.Fatalf("3.1.1 session present in a recreated vhost")
	}
	c2.mustSub("ret/#")
	c2.mustPub("ret/marker", "m") // retained messages come right after SUBACK: none here
	c2.expectFrom("ret/marker", "m")
	if n := srv.Vhost("tmp").Stats().Sessions; n != 2 {
		t.Fatalf("%d sessions in the recreated vhost, want 2", n)
	}
	select {
	case d := <-other.discs:
		t.Fatalf("client of / disconnected (%#x) by the deletion of tmp", d.ReasonCode)
	default:
	}
	other.mustSub("o")
	other.mustPub("o", "still here")
	other.expectFrom("o", "still here")
}
