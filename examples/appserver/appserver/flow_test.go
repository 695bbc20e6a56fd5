package appserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/examples/appserver/appserver"
	"github.com/turnstilemq/turnstile/examples/device/device"
	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/pkg/tokenclient"
)

// TestWholeFlowAgainstTurnstile runs the seed's whole flow against a real Turnstile (started
// through the composition root, with its token service on): a device asks the application
// server for rights; the server applies for a token through pkg/tokenclient; the device
// connects with it (MQTT 3.1.1, Token|AK|instance), publishes, is seen by a subscriber, and
// refreshes with $SYS/uploadToken before expiry; then the server revokes the token and the
// device is cut off.
func TestWholeFlowAgainstTurnstile(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Main.DataDir = t.TempDir()
	cfg.MQTT.SysInterval = 0
	cfg.Mgmt.Port = 0
	cfg.Tokens.Port = 1
	ta, err := app.New(cfg, app.Options{Logger: quiet, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- ta.Run(actx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("turnstile: %v", err)
		}
	}()
	// The application server's owner: a user with permissions on the vhost its tokens are for.
	owner, err := auth.NewUser("app", []byte("app-pw"), auth.Hasher{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	ta.Directory().PutUser(owner)
	if err := ta.Directory().SetPermission(acl.Permission{User: "app", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	akid, secret, err := ta.Tokens().CreateAccessKey("app", "/")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The application server's clock can be moved ahead, so that its token cache finds the
	// device's token due for a refresh in seconds rather than minutes (token lifetimes are at
	// least a minute).
	var ahead atomic.Int64
	addr := make(chan net.Addr, 1)
	srvDone := make(chan error, 1)
	go func() {
		srvDone <- appserver.Run(ctx, appserver.Config{
			Listen: "127.0.0.1:0",
			Tokens: tokenclient.Config{Endpoint: "http://" + ta.Addr("tokens").String(), AccessKeyID: akid, AccessKeySecret: secret,
				InstanceID: "/", CacheFile: t.TempDir() + "/cache.json", Lifetime: 2 * time.Minute,
				Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }},
			Devices:     map[string]string{"dev1": "s1"},
			AdminSecret: "admin",
			OnListen:    func(a net.Addr) { addr <- a },
			Logger:      quiet,
		})
	}()
	base := "http://" + (<-addr).String()

	// A subscriber of the device's telemetry (the default administrator, from loopback).
	seen := make(chan string, 16)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + ta.Addr("tcp").String()).SetClientID("watch").
		SetUsername("guest").SetPassword("guest").SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { seen <- m.Topic() }))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("devices/dev1/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	var mu sync.Mutex
	events := map[string]int{}
	refreshed := make(chan struct{}, 1)
	devDone := make(chan error, 1)
	go func() {
		devDone <- device.Run(ctx, device.Config{AppServer: base, Device: "dev1", Secret: "s1",
			Broker: "tcp://" + ta.Addr("tcp").String(), PublishEvery: 200 * time.Millisecond, RefreshLead: 117 * time.Second,
			Logger: quiet, OnEvent: func(e string) {
				mu.Lock()
				events[e]++
				mu.Unlock()
				if e == "refreshed" {
					select {
					case refreshed <- struct{}{}:
					default:
					}
				}
			}})
	}()
	select {
	case topic := <-seen:
		if topic != "devices/dev1/telemetry" {
			t.Fatalf("subscriber got %q", topic)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no telemetry from the device")
	}
	ahead.Store(int64(61 * time.Second)) // the server's cached token is now due for a refresh
	select {
	case <-refreshed: // uploaded on $SYS/uploadToken, acknowledged after the swap
	case err := <-devDone:
		t.Fatalf("device stopped before refreshing: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the device did not refresh its token")
	}

	req, _ := http.NewRequest("POST", base+"/admin/revoke?device=dev1", nil)
	req.Header.Set("Authorization", "Bearer admin")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, res)
	}
	res.Body.Close()
	select {
	case err := <-devDone:
		if !errors.Is(err, device.ErrCutOff) {
			t.Fatalf("device after revocation: %v, want ErrCutOff", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the revoked device was not cut off")
	}
	cancel()
	<-srvDone
	mu.Lock()
	defer mu.Unlock()
	if events["connected"] < 1 || events["published"] < 1 || events["refreshed"] < 1 || events["cut off"] != 1 {
		t.Fatalf("device events %v", events)
	}
}
