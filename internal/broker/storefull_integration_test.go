package broker_test

// A full disk under a running broker, with real clients: what cannot be made durable is refused
// (v5 PUBACK/PUBREC/SUBACK with an error code, 3.1.1 connections closed without an
// acknowledgement), QoS 0 keeps flowing, and the broker recovers by itself when space returns.
//
// The disk fills for real on a tmpfs where mounting is permitted (root); everywhere, the same
// scenarios run against a filesystem that injects ENOSPC (pebble's vfs/errorfs).

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// disk is a data directory that can be made full and freed again.
type disk struct {
	dir  string
	fill func()
	free func()
	opts *store.Options // for an injected filesystem: the store is reopened with these
}

// enospc injects ENOSPC into every operation that allocates space while it is on.
type enospc struct{ on atomic.Bool }

func (e *enospc) String() string { return "enospc" }

func (e *enospc) MaybeError(op errorfs.Op) error {
	if !e.on.Load() {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate,
		errorfs.OpReuseForWrite, errorfs.OpLink, errorfs.OpRename:
		return &fs.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	}
	return nil
}

func injectedDisk(t *testing.T) *disk {
	inj := &enospc{}
	d := &disk{dir: t.TempDir(), fill: func() { inj.on.Store(true) }, free: func() { inj.on.Store(false) }}
	d.opts = &store.Options{Fsync: store.FsyncAlways, Logger: slog.New(slog.DiscardHandler), FS: errorfs.Wrap(vfs.Default, inj)}
	return d
}

// tmpfsDisk mounts a small tmpfs; fill writes a file until it is full, free removes it.
func tmpfsDisk(t *testing.T) *disk {
	if os.Getenv("TURNSTILE_NO_TMPFS") != "" {
		t.Skip("TURNSTILE_NO_TMPFS set")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); the injected-filesystem run covers this", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	filler := filepath.Join(mnt, "filler")
	return &disk{
		dir: filepath.Join(mnt, "data"),
		fill: func() {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 64<<10)
			for len(buf) > 0 {
				if _, err := f.Write(buf); err != nil {
					buf = buf[:len(buf)/2]
				}
			}
		},
		free: func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		},
	}
}

var diskKinds = []struct {
	name string
	make func(*testing.T) *disk
}{{"injected", injectedDisk}, {"tmpfs", tmpfsDisk}}

// startOnDisk starts a Turnstile whose data directory is d's, with fsync=always (an injected
// disk puts its filesystem under the store).
func startOnDisk(t *testing.T, d *disk) (string, *testBroker) {
	t.Helper()
	var o app.Options
	if d.opts != nil {
		o.StoreFS = d.opts.FS
	}
	return startBrokerOpts(t, func(c *config.Config) {
		c.Main.DataDir = d.dir
		c.Main.Fsync = "always"
		c.Mgmt.Port = 1 // on a free port: /api/health/ready
	}, o)
}

// readyStatus is the status of GET /api/health/ready.
func readyStatus(t *testing.T, srv *testBroker) int {
	t.Helper()
	res, err := http.Get(srv.app.URL() + "/api/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func publishV5(t *testing.T, c *v5Client, p *paho.Publish) byte {
	t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	r, err := c.c.Publish(ctx, p)
	if r == nil {
		t.Fatalf("%s: publish to %q: no response: %v", c.id, p.Topic, err)
	}
	return r.ReasonCode
}

// fillUntilRefused fills the disk, then publishes retained QoS 1 messages (stored whoever
// subscribes) until one is refused (on a real filesystem the WAL's preallocated space takes a
// few first); every earlier one was acknowledged with success.
func fillUntilRefused(t *testing.T, d *disk, srv *testBroker, pub *v5Client) {
	t.Helper()
	d.fill()
	payload := make([]byte, 32<<10)
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatal("no QoS 1 publish refused on a full disk")
		}
		code := publishV5(t, pub, &paho.Publish{Topic: "fill", QoS: 1, Retain: true, Payload: payload})
		if code == byte(packet.QuotaExceeded) {
			t.Logf("refused after %d acknowledged publishes: %v", i, srv.StoreHealth())
			break
		}
		if code >= 0x80 {
			t.Fatalf("publish on a filling disk: reason %#x, want success or 0x97", code)
		}
	}
	herr := srv.StoreHealth()
	if herr == nil || !strings.Contains(herr.Error(), d.dir) || !errors.Is(herr, syscall.ENOSPC) {
		t.Fatalf("StoreHealth() = %v, want the data directory and ENOSPC", herr)
	}
}

func waitStoreHealthy(t *testing.T, srv *testBroker) {
	t.Helper()
	eventually(t, "the store to recover", func() bool { return srv.StoreHealth() == nil })
}

// drainUntil reads c's messages until one on topic arrives.
func drainUntil(t *testing.T, c *v5Client, topic string) *paho.Publish {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic == topic {
				return m
			}
		case <-timeout:
			t.Fatalf("%s: no message on %q", c.id, topic)
			return nil
		}
	}
}

// MQTT 5: PUBACK/PUBREC 0x97 for QoS 1/2 messages that cannot be stored, SUBACK 0x80 for a
// persistent session's subscription, retained messages refused, QoS 0 delivered; then recovery
// and a restart that keeps what was acknowledged.
func TestFullDiskV5(t *testing.T) {
	for _, k := range diskKinds {
		t.Run(k.name, func(t *testing.T) {
			d := k.make(t)
			addr, srv := startOnDisk(t, d)
			sub := connectV5(t, addr, v5Connect("sub", true, 3600))
			sub.subscribe(paho.SubscribeOptions{Topic: "t/#", QoS: 1})
			pub := connectV5(t, addr, v5Connect("pub", true, 0))
			if code := publishV5(t, pub, &paho.Publish{Topic: "t/before", QoS: 1, Payload: []byte("1")}); code != 0 {
				t.Fatalf("publish before the disk filled: %#x", code)
			}
			drainUntil(t, sub, "t/before")

			if got := readyStatus(t, srv); got != http.StatusOK {
				t.Fatalf("/api/health/ready before the disk filled: %d", got)
			}
			fillUntilRefused(t, d, srv, pub)
			if got := readyStatus(t, srv); got != http.StatusServiceUnavailable {
				t.Fatalf("/api/health/ready on a full disk: %d, want 503", got)
			}

			// Known degraded: refused before routing, QoS 1 and QoS 2, retained or not.
			for _, p := range []*paho.Publish{
				{Topic: "t/q1", QoS: 1, Payload: []byte("x")},
				{Topic: "t/q2", QoS: 2, Payload: []byte("x")},
				{Topic: "r/q1", QoS: 1, Retain: true, Payload: []byte("x")},
			} {
				if code := publishV5(t, pub, p); code != byte(packet.QuotaExceeded) {
					t.Fatalf("QoS %d publish (retain %v) on a full disk: reason %#x, want 0x97", p.QoS, p.Retain, code)
				}
			}
			// QoS 0 keeps flowing; a QoS 0 retained message is delivered but not retained.
			pub.pub("t/zero", 0, false, "z")
			drainUntil(t, sub, "t/zero")
			pub.pub("r/zero", 0, true, "z")
			// A persistent session's subscription cannot be stored: SUBACK 0x80, not granted.
			ctx, cancel := ctxTimeout()
			sa, err := sub.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "new/#", QoS: 1}}})
			cancel()
			if sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] != byte(packet.UnspecifiedError) {
				t.Fatalf("SUBSCRIBE on a full disk: %+v, %v; want SUBACK 0x80", sa, err)
			}
			pub.pub("new/x", 0, false, "not subscribed")
			sub.expectNoMsg()
			// Nor can its removal: UNSUBACK 0x80, and the subscription stays.
			ctx, cancel = ctxTimeout()
			ua, _ := sub.c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"t/#"}})
			cancel()
			if ua == nil || len(ua.Reasons) != 1 || ua.Reasons[0] != byte(packet.UnspecifiedError) {
				t.Fatalf("UNSUBSCRIBE on a full disk: %+v; want UNSUBACK 0x80", ua)
			}
			pub.pub("t/still", 0, false, "still subscribed")
			drainUntil(t, sub, "t/still")

			d.free()
			waitStoreHealthy(t, srv)
			if got := readyStatus(t, srv); got != http.StatusOK {
				t.Fatalf("/api/health/ready once space returned: %d", got)
			}
			if code := publishV5(t, pub, &paho.Publish{Topic: "t/after", QoS: 1, Payload: []byte("2")}); code != 0 {
				t.Fatalf("QoS 1 publish after space returned: %#x", code)
			}
			drainUntil(t, sub, "t/after")
			if sa := sub.subscribe(paho.SubscribeOptions{Topic: "new/#", QoS: 1}); sa.Reasons[0] != 1 {
				t.Fatalf("SUBSCRIBE after space returned: %#x", sa.Reasons[0])
			}
			// Neither retained message was kept.
			late := connectV5(t, addr, v5Connect("late", true, 0))
			late.subscribe(paho.SubscribeOptions{Topic: "r/#", QoS: 1})
			late.expectNoMsg()
			sub.disconnect(0)
			waitConnected(t, srv, 2)

			// A restart keeps the session with both subscriptions and what was acknowledged.
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			srv.Close(ctx)
			cancel()
			if d.opts != nil {
				d.opts = nil // reopen plainly: the injected filesystem is off anyway
			}
			addr, _ = startOnDisk(t, d)
			sub2 := connectV5(t, addr, v5Connect("sub", false, 3600))
			if !sub2.ack.SessionPresent {
				t.Fatal("session lost in the restart")
			}
			pub2 := connectV5(t, addr, v5Connect("pub", true, 0))
			pub2.pub("new/y", 1, false, "y")
			drainUntil(t, sub2, "new/y")
			pub2.pub("t/y", 1, false, "y")
			drainUntil(t, sub2, "t/y")
		})
	}
}

// MQTT 3.1.1 has no negative acknowledgement: a QoS 1 PUBLISH that cannot be stored gets no
// PUBACK and its connection is closed; QoS 0 keeps flowing.
func TestFullDiskV311(t *testing.T) {
	for _, k := range diskKinds {
		t.Run(k.name, func(t *testing.T) {
			d := k.make(t)
			addr, srv := startOnDisk(t, d)
			pub := connectV5(t, addr, v5Connect("pub5", true, 0))
			sub := connectV5(t, addr, v5Connect("sub", true, 0))
			sub.subscribe(paho.SubscribeOptions{Topic: "v3/#", QoS: 1})

			// A persistent 3.1.1 session's UNSUBSCRIBE cannot be stored, and its UNSUBACK has no
			// reason code: the connection closes without one.
			p3 := connectV3(t, addr, "p3sub", false, nil)
			p3.subscribe("v3/#", 1)
			fillUntilRefused(t, d, srv, pub)
			utok := p3.c.Unsubscribe("v3/#")
			p3.expectLost()
			if utok.WaitTimeout(time.Second) && utok.Error() == nil {
				t.Fatal("UNSUBSCRIBE acknowledged on a full disk")
			}

			// paho.mqtt.golang: the connection is lost; the publish is not acknowledged.
			c3 := connectV3(t, addr, "p3", true, nil)
			tok := c3.c.Publish("v3/q1", 1, false, "x")
			c3.expectLost()
			if tok.WaitTimeout(time.Second) && tok.Error() == nil {
				t.Fatal("paho.mqtt.golang: QoS 1 publish completed without error on a full disk")
			}
			// Raw: exactly nothing comes back, then the close.
			raw := dialRaw(t, addr, packet.V311)
			raw.connect("raw3", true, 30, nil)
			raw.send(rawPublish(packet.V311, 0, false, false, "v3/q0", 0, nil, []byte("zero")))
			raw.expectNothing()
			drainUntil(t, sub, "v3/q0") // QoS 0 flows
			raw.send(rawPublish(packet.V311, 1, false, false, "v3/q1", 7, nil, []byte("one")))
			raw.expectClosedSilently()
			raw2 := dialRaw(t, addr, packet.V311)
			raw2.connect("raw3b", true, 30, nil)
			raw2.send(rawPublish(packet.V311, 2, false, false, "v3/q2", 8, nil, []byte("two")))
			raw2.expectClosedSilently()

			d.free()
			waitStoreHealthy(t, srv)
			raw3 := dialRaw(t, addr, packet.V311)
			raw3.connect("raw3c", true, 30, nil)
			raw3.send(rawPublish(packet.V311, 1, false, false, "v3/ok", 9, nil, []byte("ok")))
			if ack := expect[*packet.Puback](raw3); ack.PacketID != 9 {
				t.Fatalf("PUBACK for %d, want 9", ack.PacketID)
			}
			drainUntil(t, sub, "v3/ok")
			c3b := connectV3(t, addr, "p3b", true, func(o *mqtt.ClientOptions) {})
			c3b.pub("v3/paho", 1, false, "ok")
			drainUntil(t, sub, "v3/paho")
		})
	}
}

// A broker started on a full disk fails at once with one error naming the data directory.
func TestStartOnFullDisk(t *testing.T) {
	d := tmpfsDisk(t)
	addr, srv := startOnDisk(t, d)
	pub := connectV5(t, addr, v5Connect("pub", true, 0))
	for i := range 50 {
		pub.pub("keep/"+string(rune('a'+i%26)), 1, true, strings.Repeat("x", 1000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	srv.Close(ctx)
	cancel()

	d.fill()
	cfg := config.Default()
	cfg.MQTT.Port, cfg.MQTT.WSPort, cfg.MQTT.SysInterval, cfg.Mgmt.Port = 0, 0, 0, 0
	cfg.Main.DataDir = d.dir
	start := time.Now()
	a, err := app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Ephemeral: true})
	if err == nil {
		stopped, stop := context.WithCancel(context.Background())
		stop()
		a.Run(stopped) // closes what New opened
		t.Fatal("Turnstile started on a full disk")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v to fail", took)
	}
	if !strings.Contains(err.Error(), d.dir) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %q: want the data directory and ENOSPC", err)
	}
	t.Logf("app.New on a full disk: %v", err)
	d.free()
	addr, _ = startOnDisk(t, d)
	late := connectV5(t, addr, v5Connect("late", true, 0))
	late.subscribe(paho.SubscribeOptions{Topic: "keep/#", QoS: 1})
	late.expectMsgs(26)
}

// The disk fills while a write is in flight (the store is not yet known degraded): a QoS 2
// PUBLISH gets PUBREC 0x97 and its packet id is released, so the next PUBLISH with that id is
// a new message; a persistent session's SUBSCRIBE gets SUBACK 0x80 and the subscription is
// taken back.
func TestFullDiskFailsInFlight(t *testing.T) {
	d := injectedDisk(t)
	addr, srv := startOnDisk(t, d)
	sub := connectV5(t, addr, v5Connect("sub", true, 3600))
	sub.subscribe(paho.SubscribeOptions{Topic: "q2/#", QoS: 2})
	raw := dialRaw(t, addr, packet.V5)
	raw.connect("raw5", true, 30, nil)

	d.fill()
	raw.send(rawPublish(packet.V5, 2, false, false, "q2/a", 5, nil, []byte("a")))
	if rec := expect[*packet.Pubrec](raw); rec.PacketID != 5 || rec.ReasonCode != packet.QuotaExceeded {
		t.Fatalf("PUBREC %d %v, want 5 0x97", rec.PacketID, rec.ReasonCode)
	}
	if srv.StoreHealth() == nil {
		t.Fatal("store healthy after a failed write")
	}
	d.free()
	waitStoreHealthy(t, srv)
	ctx, cancel := ctxTimeout()
	sa, err := sub.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "x/#", QoS: 1}}})
	cancel()
	if err != nil || sa.Reasons[0] != 1 {
		t.Fatalf("SUBSCRIBE once healthy: %+v %v", sa, err)
	}

	// The same packet id again: a new message, delivered.
	raw.send(rawPublish(packet.V5, 2, false, false, "q2/b", 5, nil, []byte("b")))
	if rec := expect[*packet.Pubrec](raw); rec.PacketID != 5 || rec.ReasonCode != packet.Success {
		t.Fatalf("PUBREC %d %v, want 5 success", rec.PacketID, rec.ReasonCode)
	}
	raw.send(rawAck(packet.PUBREL, 5))
	expect[*packet.Pubcomp](raw)
	drainUntil(t, sub, "q2/b")

	d.fill()
	ctx, cancel = ctxTimeout()
	sa, err = sub.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "y/#", QoS: 1}}})
	cancel()
	if sa == nil || sa.Reasons[0] != byte(packet.UnspecifiedError) {
		t.Fatalf("SUBSCRIBE as the disk fills: %+v %v, want SUBACK 0x80", sa, err)
	}
	d.free()
	waitStoreHealthy(t, srv)
	pub := connectV5(t, addr, v5Connect("pub", true, 0))
	pub.pub("y/1", 1, false, "not subscribed")
	pub.pub("x/1", 1, false, "subscribed")
	for m := sub.expectMsg(); m.Topic != "x/1"; m = sub.expectMsg() {
		if m.Topic == "y/1" {
			t.Fatal("a subscription refused with SUBACK 0x80 delivers messages")
		}
	}
	sub.expectNoMsg()
}
