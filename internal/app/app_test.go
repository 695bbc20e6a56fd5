package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/config"
)

const waitTimeout = 5 * time.Second

// testConfig is the default configuration with a store in a temporary directory, the MQTT TCP
// listener and the management API on (on ephemeral ports, through Options.Ephemeral).
func testConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Main.DataDir = t.TempDir()
	cfg.MQTT.SysInterval = 0
	cfg.MQTT.WSPort = 0
	return cfg
}

// run starts a whole Turnstile through the composition root and stops it when the test ends.
func run(t *testing.T, cfg *config.Config) (*app.App, func()) {
	t.Helper()
	return runWith(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// runWith is run with the given logger.
func runWith(t *testing.T, cfg *config.Config, logger *slog.Logger) (*app.App, func()) {
	t.Helper()
	a, err := app.New(cfg, app.Options{Logger: logger, Ephemeral: true, Version: "test"})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

func get(t *testing.T, hc *http.Client, url, user, pw string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestWholeTurnstile starts a complete Turnstile in-process through the composition root and
// drives it as a user would: a paho MQTT 5 publisher and subscriber logged in as the default
// user, and the management API over HTTP through the same authentication chain.
func TestWholeTurnstile(t *testing.T) {
	t.Parallel()
	a, stop := run(t, testConfig(t))
	addr := a.Addr("tcp").String()

	msgs := make(chan *paho.Publish, 1)
	sub := connect(t, addr, "sub", "guest", "guest", func(p *paho.Publish) { msgs <- p })
	if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "app/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, addr, "pub", "guest", "guest", nil)
	if _, err := pub.Publish(context.Background(), &paho.Publish{Topic: "app/x", QoS: 1, Payload: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m.Payload) != "hello" {
			t.Fatalf("got %q", m.Payload)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the subscriber got nothing")
	}

	// The management API answers on its own listener, logging in through the same chain.
	base := a.URL()
	if code, _ := get(t, http.DefaultClient, base+"/api/overview", "guest", "wrong"); code != 401 {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	code, body := get(t, http.DefaultClient, base+"/api/connections", "guest", "guest")
	if code != 200 || !strings.Contains(body, `"client_id":"pub"`) {
		t.Fatalf("GET /api/connections: %d %s", code, body)
	}
	code, body = get(t, http.DefaultClient, base+"/metrics", "", "")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "turnstile_connections 2") ||
		!strings.Contains(body, `turnstile_login_failures_total{reason="bad_credentials"} 1`) {
		t.Fatalf("GET /metrics: %d\n%.2000s", code, body)
	}
	if code, _ := get(t, http.DefaultClient, base+"/api/health/ready", "", ""); code != 200 {
		t.Fatalf("ready: %d", code)
	}

	stop()
	if code, _ := get(t, http.DefaultClient, base+"/api/health", "", ""); code != 0 {
		t.Fatal("the API still answers after shutdown")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the MQTT listener still accepts after shutdown")
	}
}

// TestTakenPortFails: a configured listener that cannot be opened is an error naming the key
// and the address; nothing else stays open and the store is released.
func TestTakenPortFails(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"[mqtt] port", "[mgmt] port"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := testConfig(t)
		cfg.Main.DataDir = filepath.Join(cfg.Main.DataDir, "new") // does not exist yet
		port := ln.Addr().(*net.TCPAddr).Port
		if key == "[mqtt] port" {
			cfg.MQTT.Port = port
		} else {
			cfg.MQTT.Port = 0
			cfg.Mgmt.Port = port
		}
		_, err = app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Fatalf("%s taken: %v, want an error naming the key and the address", key, err)
		}
		if _, err := os.Stat(cfg.Main.DataDir); !os.IsNotExist(err) {
			t.Fatalf("a failed start created the data directory: %v", err)
		}
		// The same data directory opens afterwards.
		cfg.MQTT.Port, cfg.Mgmt.Port = 1, 1
		a, err := app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Ephemeral: true})
		if err != nil {
			t.Fatalf("after the failed start, the data directory cannot be opened again: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a.Run(ctx)
	}
}

// TestManagementHTTPS: with [main] tls_cert the API is served over HTTPS on [mgmt] tls_port.
func TestManagementHTTPS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MQTT.Port, cfg.MQTT.TLSPort, cfg.MQTT.WSSPort, cfg.Mgmt.Port = 0, 0, 0, 0
	var pool *x509.CertPool
	cfg.Main.TLSCert, cfg.Main.TLSKey, pool = selfSigned(t)
	a, _ := run(t, cfg)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body := get(t, hc, a.URL()+"/api/health", "", ""); code != 200 || !strings.HasPrefix(a.URL(), "https://") {
		t.Fatalf("HTTPS health: %d %s (%s)", code, body, a.URL())
	}
}

func connect(t *testing.T, addr, id, user, pw string, onPublish func(*paho.Publish)) *paho.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	cfg := paho.ClientConfig{Conn: conn}
	if onPublish != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { onPublish(pr.Packet); return true, nil }}
	}
	c := paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: user, UsernameFlag: true, Password: []byte(pw), PasswordFlag: true})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: %v %+v", id, err, ack)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	return c
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key, and returns a pool
// that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestFailedStartLeavesNothing: a start that fails after the store was opened (here: a
// definitions file that does not parse) removes the data directory it created.
func TestFailedStartLeavesNothing(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Main.DataDir = filepath.Join(cfg.Main.DataDir, "fresh")
	bad := filepath.Join(t.TempDir(), "defs.json")
	os.WriteFile(bad, []byte(`{"users": 5}`), 0o600)
	cfg.Main.DefinitionsFile = bad
	if _, err := app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Ephemeral: true}); err == nil {
		t.Fatal("a start with a bad definitions file succeeded")
	}
	if _, err := os.Stat(cfg.Main.DataDir); !os.IsNotExist(err) {
		t.Fatalf("the failed start left the data directory behind: %v", err)
	}
}
