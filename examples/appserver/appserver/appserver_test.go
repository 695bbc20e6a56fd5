package appserver_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/examples/appserver/appserver"
	"github.com/turnstilemq/turnstile/examples/device/device"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/tokens"
	"github.com/turnstilemq/turnstile/pkg/tokenclient"
)

type owners struct{}

func (owners) UserID(name string) (string, bool) { return "id-" + name, name == "app" }
func (owners) HasAccess(user, vhost string) bool { return user == "app" && vhost == "iot" }

// The application server and the device's side of it, in-process, against the real token
// service: rights for a device, the cache, the fallback, revocation, and the CONNECT
// credentials the device would send (checked by the token login provider). The MQTT half of
// the flow needs the broker's token login and $SYS topics and is tested there.
func TestAppServerFlow(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := make([]byte, 32)
	rand.Read(key)
	svc, err := tokens.New(tokens.Options{MasterKey: key, Owners: owners{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	h := tokens.Handler(svc)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	akid, secret, err := svc.CreateAccessKey("app", "iot")
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- appserver.Run(ctx, appserver.Config{
			Listen:      "127.0.0.1:0",
			Tokens:      tokenclient.Config{Endpoint: ts.URL, AccessKeyID: akid, AccessKeySecret: secret, InstanceID: "iot", CacheFile: t.TempDir() + "/cache.json"},
			Devices:     map[string]string{"dev1": "s1", "dev2": "s2"},
			AdminSecret: "admin",
			OnListen:    func(a net.Addr) { addr <- a },
			Logger:      quiet,
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("appserver.Run: %v", err)
		}
	}()
	base := "http://" + (<-addr).String()
	dev := &device.Config{AppServer: base, Device: "dev1", Secret: "s1", HTTPClient: http.DefaultClient,
		Resources: []string{"devices/dev1/#"}, Actions: "R,W"}

	r1, err := device.FetchRights(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Type != "RW" || r1.Username != "Token|"+akid+"|iot" || time.Until(r1.Expiry()) < 50*time.Minute {
		t.Fatalf("rights %+v", r1)
	}
	// What the device sends at CONNECT is what the token login accepts.
	d, id, err := svc.Provider().Authenticate(ctx, &auth.Credentials{Username: r1.Username, Password: []byte(r1.Password()), ClientID: "GID_device@@@dev1"})
	if d != auth.Allow || err != nil || id.Vhost != "iot" || len(id.Grants) != 2 {
		t.Fatalf("CONNECT with the rights: %v %v %+v", d, err, id)
	}
	// The upload payload is what VerifyUpload takes.
	if _, code, err := svc.VerifyUpload(id, device.UploadPayload(r1.Token, r1.Type), time.Now()); err != nil || code != 0 {
		t.Fatalf("upload payload: %d %v", code, err)
	}
	// The same rights again: from the cache.
	if r2, err := device.FetchRights(ctx, dev); err != nil || r2.Token != r1.Token {
		t.Fatalf("cached rights: %v", err)
	}
	// The token service down: the cached token still valid.
	down.Store(true)
	if r3, err := device.FetchRights(ctx, dev); err != nil || r3.Token != r1.Token {
		t.Fatalf("fallback: %v", err)
	}
	other := *dev
	other.Resources = []string{"devices/dev1/x"}
	if _, err := device.FetchRights(ctx, &other); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("down, not cached: %v", err)
	}
	down.Store(false)
	// The device's secret and the server's policy.
	bad := *dev
	bad.Secret = "wrong"
	if _, err := device.FetchRights(ctx, &bad); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong secret: %v", err)
	}
	bad = *dev
	bad.Resources = []string{"devices/dev2/#"}
	if _, err := device.FetchRights(ctx, &bad); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("another device's topics: %v", err)
	}
	// Revocation by the administrator: the token is dead, the device is cut off.
	req, _ := http.NewRequest("POST", base+"/admin/revoke?device=dev1", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("revoke without the admin secret: %v", err)
	}
	req.Header.Set("Authorization", "Bearer admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := svc.Verify(r1.Token, akid, "iot", "RW", time.Now()); tokens.CodeOf(err) != tokens.InvalidRevoked {
		t.Fatalf("after revoke: %v", err)
	}
	if d, _, _ := svc.Provider().Authenticate(ctx, &auth.Credentials{Username: r1.Username, Password: []byte(r1.Password())}); d != auth.Deny {
		t.Fatal("a revoked token still logs in")
	}
	// The next rights are a new token (the revoked one left the cache).
	if r4, err := device.FetchRights(ctx, dev); err != nil || r4.Token == r1.Token {
		t.Fatalf("rights after revoke: %v", err)
	}
}
