package broker_test

// Attacks on the bans through the whole program (docs/security.md, "Bans"): a ban disconnects
// a live client with DISCONNECT 0x98 and suppresses its will and a pending delayed will; a
// banned CONNECT is refused with 0x8A (3.1.1: return code 5); a CIDR ban matches IPv4 and IPv6
// sources; an expired ban no longer applies (clock.Fake); bans survive a restart.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/ban"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/event"
)

// startBrokerClock is startBroker with a fake clock (will delays, session expiry, ban expiry);
// the data directory is dir ("" for a fresh one).
func startBrokerClock(t *testing.T, clk clock.Clock, dir string, mod func(*config.Config)) (string, *testBroker) {
	t.Helper()
	return startBrokerWith(t, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clk}, dir, mod)
}

// startBrokerWith is startBrokerOpts with the data directory dir ("" for a fresh one).
func startBrokerWith(t *testing.T, o app.Options, dir string, mod func(*config.Config)) (string, *testBroker) {
	t.Helper()
	return startBrokerOpts(t, func(cfg *config.Config) {
		if dir != "" {
			cfg.Main.DataDir = dir
		}
		if mod != nil {
			mod(cfg)
		}
	}, o)
}

func mustBan(t *testing.T, b *testBroker, as ban.Kind, who string, until time.Time) ban.Ban {
	t.Helper()
	nb, _, err := b.app.Bans().Add(ban.Ban{As: as, Who: who, By: "test", Reason: "attack", Until: until})
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// A ban disconnects the matching live clients with 0x98 (3.1.1: the connection closes) and
// their wills are not published; their CONNECTs are refused from then on.
func TestBanDisconnectsAndSuppressesWills(t *testing.T) {
	t.Parallel()
	addr, b := startBroker(t, nil)
	w := watcher(t, addr, "ban-watch", "last/#")
	v5 := connectV5(t, addr, willConnect("ban-v5", "last/v5", 0, 0))
	v3 := connectV3(t, addr, "ban-v3", true, func(o *mqtt.ClientOptions) { o.SetWill("last/v3", "gone", 1, false) })
	bystander := connectV5(t, addr, willConnect("bystander", "last/bystander", 0, 0))

	mustBan(t, b, ban.ClientID, "ban-v5", time.Time{})
	if code := v5.expectServerDisconnect(); code != 0x98 {
		t.Fatalf("DISCONNECT %#x, want 0x98 (administrative action)", code)
	}
	mustBan(t, b, ban.ClientID, "ban-v3", time.Time{})
	v3.expectLost()
	w.expectNoMsg()
	if n := b.WillsSuppressed(event.WillBanned); n != 2 {
		t.Fatalf("%d wills suppressed as banned, want 2", n)
	}
	if n := b.app.Counters().ByReason(event.Disconnected)["administrative_action"]; n != 2 {
		t.Fatalf("%d administrative disconnects, want 2", n)
	}
	c, err := tryConnectV5(t, addr, v5Connect("ban-v5", true, 0))
	if code := connackCode(t, c, err); code != 0x8A {
		t.Fatalf("banned v5 CONNECT: %#x, want 0x8A", code)
	}
	if c3, err := tryConnectV3(t, addr, "ban-v3", true, nil); err == nil || c3.returnCode() != 5 {
		t.Fatalf("banned 3.1.1 CONNECT: %v, return code %d; want 5", err, c3.returnCode())
	}
	// The bystander was not touched; its will still works.
	bystander.drop()
	w.expectFrom("last/bystander", "gone:bystander")
}

// A ban suppresses the pending delayed will of an offline session at once, by the client's
// user name here; the session of a client not banned publishes its will when the delay ends.
func TestBanSuppressesPendingDelayedWill(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	addr, b := startBrokerClock(t, clk, "", func(c *config.Config) { c.MQTT.AllowAnonymous = false; c.Main.DefaultPassword = "" })
	for _, u := range []string{"mallory", "alice"} {
		addUser(t, b, u, "pw")
		grantAll(t, b, u, "/")
	}
	w := connectV5(t, addr, login("pw-watch", "alice", "pw"))
	w.mustSub("last/#")
	for _, u := range []string{"mallory", "alice"} {
		cp := willConnect("dev-"+u, "last/"+u, 3600, 60)
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = u, true, []byte("pw"), true
		connectV5(t, addr, cp).drop()
	}
	eventually(t, "both offline", func() bool { return stats(b).ClientsConnected == 1 })

	mustBan(t, b, ban.Username, "mallory", time.Time{})
	if n := b.WillsSuppressed(event.WillBanned); n != 1 {
		t.Fatalf("%d wills suppressed as banned, want 1 (the pending one)", n)
	}
	clk.Advance(61 * time.Second)
	w.expectFrom("last/alice", "gone:dev-alice")
	w.expectNoMsg()
	// The banned user cannot connect, with or without a vhost prefix, with the right password.
	for _, user := range []string{"mallory", "/:mallory"} {
		c, err := tryConnectV5(t, addr, login("m2", user, "pw"))
		if code := connackCode(t, c, err); code != 0x8A {
			t.Fatalf("banned user %q: %#x, want 0x8A", user, code)
		}
	}
}

// An expired ban no longer applies, and leaves the list.
func TestBanExpires(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	addr, b := startBrokerClock(t, clk, "", nil)
	nb := mustBan(t, b, ban.ClientID, "temp", clk.Now().Add(10*time.Minute))
	c, err := tryConnectV5(t, addr, v5Connect("temp", true, 0))
	if code := connackCode(t, c, err); code != 0x8A {
		t.Fatalf("banned: %#x", code)
	}
	clk.Advance(10*time.Minute - time.Second)
	c, err = tryConnectV5(t, addr, v5Connect("temp", true, 0))
	if code := connackCode(t, c, err); code != 0x8A {
		t.Fatalf("a second before the end: %#x", code)
	}
	clk.Advance(time.Second)
	connectV5(t, addr, v5Connect("temp", true, 0))
	eventually(t, "the expired ban pruned", func() bool { _, ok := b.app.Bans().Get(nb.ID); return !ok })
}

// A CIDR ban matches IPv4 and IPv6 sources, an IPv4-mapped range IPv4 sources, and a single
// address only itself. The listener binds "::" and serves both families.
func TestBanCIDR(t *testing.T) {
	t.Parallel()
	addr, b := startBroker(t, func(c *config.Config) { c.MQTT.Bind = "::" })
	_, port, _ := net.SplitHostPort(addr)
	v4, v6 := net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)
	refused := func(addr, id string) bool {
		t.Helper()
		c, err := tryConnectV5(t, addr, v5Connect(id, true, 0))
		return connackCode(t, c, err) == 0x8A
	}
	live4 := connectV5(t, v4, v5Connect("live4", true, 0))
	live6 := connectV5(t, v6, v5Connect("live6", true, 0))

	b6 := mustBan(t, b, ban.PeerNet, "::1/128", time.Time{})
	if code := live6.expectServerDisconnect(); code != 0x98 {
		t.Fatalf("IPv6 client: DISCONNECT %#x", code)
	}
	if !refused(v6, "n6") || refused(v4, "n4") {
		t.Fatal("::1/128 must refuse ::1 and only it")
	}
	b.app.Bans().Delete(b6.ID)

	b4 := mustBan(t, b, ban.PeerNet, "::ffff:127.0.0.0/104", time.Time{}) // written mapped: 127.0.0.0/8
	if b4.Who != "127.0.0.0/8" {
		t.Fatalf("mapped range kept as %q", b4.Who)
	}
	if code := live4.expectServerDisconnect(); code != 0x98 {
		t.Fatalf("IPv4 client: DISCONNECT %#x", code)
	}
	if !refused(v4, "n4b") || refused(v6, "n6b") {
		t.Fatal("127.0.0.0/8 must refuse 127.0.0.1 and not ::1")
	}
	if !refused(v4, fmt.Sprintf("any-%d", time.Now().UnixNano())) {
		t.Fatal("any client id from the range must be refused")
	}
	b.app.Bans().Delete(b4.ID)
	mustBan(t, b, ban.PeerHost, "127.0.0.2", time.Time{})
	connectV5(t, v4, v5Connect("from-1", true, 0))
}

// Bans are kept in the store: after a restart a banned client is still refused.
func TestBanSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	_, b := startBrokerClock(t, clk, dir, nil)
	mustBan(t, b, ban.ClientID, "persistent-offender", time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	addr, _ := startBrokerClock(t, clk, dir, nil)
	c, err := tryConnectV5(t, addr, v5Connect("persistent-offender", true, 0))
	if code := connackCode(t, c, err); code != 0x8A {
		t.Fatalf("after a restart: %#x, want 0x8A", code)
	}
}
