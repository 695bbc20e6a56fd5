package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/config"
)

// startApp runs a whole Turnstile (through the composition root) with its MQTT TCP listener on
// an ephemeral loopback port, anonymous access on, for the test.
func startApp(t *testing.T) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.SysInterval = 0
	cfg.MQTT.AllowAnonymous = true // these tests are not about authentication
	cfg.MQTT.WSPort = 0
	cfg.Mgmt.Port = 0
	cfg.Main.DataDir = t.TempDir()
	a, err := app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the broker did not stop")
		}
	})
	return a
}

// startBroker runs a Turnstile on an ephemeral loopback port and returns the port.
func startBroker(t *testing.T) int {
	t.Helper()
	return startApp(t).Addr("tcp").(*net.TCPAddr).Port
}

// testConfig is a short, slow run: a low fixed rate that any broker carries without loss.
func testConfig(port int, s Scenario, clients int, qos byte) Config {
	cfg := DefaultConfig()
	cfg.Port = port
	cfg.Scenario = s
	cfg.Clients = clients
	cfg.QoS = qos
	cfg.Duration = time.Second
	cfg.Rate = 200
	cfg.Drain = 2 * time.Second
	return cfg
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	var progress bytes.Buffer
	r, err := Run(context.Background(), cfg, &progress)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	var text bytes.Buffer
	r.WriteText(&text)
	t.Logf("\n%s", text.String())
	if r.Errors != 0 {
		t.Errorf("%d errors, first: %s", r.Errors, r.FirstError)
	}
	return r
}

// checkDelivery asserts that everything sent arrived, once, with a plausible latency.
func checkDelivery(t *testing.T, r *Result, receivers int) {
	t.Helper()
	if r.Sent == 0 || r.Received == 0 {
		t.Fatalf("sent %d, received %d: want both > 0", r.Sent, r.Received)
	}
	if r.Expected != r.Sent*int64(receivers) {
		t.Errorf("expected %d, want sent %d × %d receivers", r.Expected, r.Sent, receivers)
	}
	if r.Loss == nil || *r.Loss != 0 || r.Received != r.Expected || r.Gaps != 0 || r.Duplicates != 0 {
		t.Errorf("loss %v: received %d of %d, %d gaps, %d duplicates", r.Loss, r.Received, r.Expected, r.Gaps, r.Duplicates)
	}
	if r.Latency.Samples != uint64(r.Received) || r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.Max {
		t.Errorf("latency %+v for %d messages", r.Latency, r.Received)
	}
	// 200 msg/s per publisher for 1 s: about 200 each, never wildly more.
	if perPub := r.Sent / int64(r.Publishers); perPub < 150 || perPub > 202 {
		t.Errorf("sent %d per publisher at 200/s for 1 s", perPub)
	}
	if r.Skipped != 0 {
		t.Errorf("%d messages skipped at a low rate", r.Skipped)
	}
	if r.QoS > 0 && (r.Acked != r.Sent || r.AckLatency == nil || r.AckLatency.Samples != uint64(r.Sent)) {
		t.Errorf("QoS %d: %d acknowledged of %d sent, ack latency %+v", r.QoS, r.Acked, r.Sent, r.AckLatency)
	}
}

func TestScenarios(t *testing.T) {
	cases := []struct {
		name      string
		scenario  Scenario
		clients   int
		qos       byte
		version   byte
		receivers int
	}{
		{"fanin/qos0", FanIn, 4, 0, 4, 1},
		{"fanin/qos2/v5", FanIn, 3, 2, 5, 1},
		{"fanout/qos0", FanOut, 4, 0, 4, 4},
		{"fanout/qos1/v5", FanOut, 3, 1, 5, 3},
		{"pairs/qos1", Pairs, 3, 1, 4, 1},
		{"pairs/qos2", Pairs, 2, 2, 4, 1},
		{"pairs/qos0/v31", Pairs, 2, 0, 3, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(startBroker(t), c.scenario, c.clients, c.qos)
			cfg.Version = c.version
			r := run(t, cfg)
			checkDelivery(t, r, c.receivers)
		})
	}
}

func TestPubQoS1AcknowledgesEverything(t *testing.T) {
	t.Parallel()
	r := run(t, testConfig(startBroker(t), Pub, 2, 1))
	if r.Sent == 0 || r.Acked != r.Sent || r.Expected != 0 || r.Loss != nil {
		t.Errorf("sent %d, acked %d, expected %d, loss %v", r.Sent, r.Acked, r.Expected, r.Loss)
	}
	if r.Latency.Kind != "ack" || r.Latency.Samples != uint64(r.Sent) {
		t.Errorf("latency %+v, want the acknowledgement of each message", r.Latency)
	}
}

// signal is a progress writer that closes ready when a line contains word.
type signal struct {
	mu    sync.Mutex
	word  string
	ready chan struct{}
	done  bool
}

func (s *signal) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done && strings.Contains(string(b), s.word) {
		s.done = true
		close(s.ready)
	}
	return len(b), nil
}

func TestSubReceivesAnotherRunsPublications(t *testing.T) {
	t.Parallel()
	port := startBroker(t)
	subCfg := testConfig(port, Sub, 2, 1)
	subCfg.Duration = 1500 * time.Millisecond
	listening := &signal{word: "running", ready: make(chan struct{})}
	type out struct {
		r   *Result
		err error
	}
	subDone := make(chan out, 1)
	go func() {
		r, err := Run(context.Background(), subCfg, listening)
		subDone <- out{r, err}
	}()
	select {
	case <-listening.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("sub did not start")
	}
	pubCfg := testConfig(port, Pub, 2, 1)
	pubCfg.Duration = 500 * time.Millisecond
	pub := run(t, pubCfg)
	s := <-subDone
	if s.err != nil {
		t.Fatal(s.err)
	}
	r := s.r
	if r.Errors != 0 {
		t.Errorf("sub: %d errors, first: %s", r.Errors, r.FirstError)
	}
	if r.Received != 2*pub.Sent || r.Gaps != 0 || r.Loss == nil || *r.Loss != 0 || r.Expected != r.Received {
		t.Errorf("sub received %d (expected %d, loss %v, %d gaps) of 2 × %d published",
			r.Received, r.Expected, r.Loss, r.Gaps, pub.Sent)
	}
	if r.Latency.Samples != uint64(r.Received) || r.Latency.Max > 1000 {
		t.Errorf("latency %+v", r.Latency)
	}
}

func TestConnHoldsConnections(t *testing.T) {
	t.Parallel()
	cfg := testConfig(startBroker(t), Conn, 60, 0)
	cfg.Duration = 200 * time.Millisecond
	cfg.Concurrency = 8
	var progress bytes.Buffer
	r, err := Run(context.Background(), cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connects != 60 || r.ConnectFailures != 0 || r.Alive != 60 || r.Errors != 0 || r.ConnectRate <= 0 {
		t.Errorf("%+v", r)
	}
	if r.Latency.Kind != "connack" || r.Latency.Samples != 60 {
		t.Errorf("latency %+v", r.Latency)
	}
	if !strings.Contains(progress.String(), "holding 60 connections") {
		t.Errorf("progress %q does not announce the hold", progress.String())
	}
}

func TestUnlimitedRateQoS1(t *testing.T) {
	// As fast as possible within the in-flight window: everything sent is acknowledged and
	// delivered once the run drains.
	t.Parallel()
	cfg := testConfig(startBroker(t), Pairs, 2, 1)
	cfg.Rate = 0
	cfg.Duration = 300 * time.Millisecond
	cfg.Inflight = 16
	r := run(t, cfg)
	if r.Sent == 0 || r.Acked != r.Sent || r.Received != r.Sent || r.Duplicates != 0 {
		t.Errorf("sent %d, acked %d, received %d, duplicates %d", r.Sent, r.Acked, r.Received, r.Duplicates)
	}
}

func TestRunErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Size = 8
	cfg.Scenario = "nope"
	_, err := Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "size 8") || !strings.Contains(err.Error(), `scenario "nope"`) {
		t.Errorf("Run with a bad configuration: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg = testConfig(port, Pairs, 1, 0)
	if _, err := Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "subscriber 0") {
		t.Errorf("Run against a closed port: %v", err)
	}
}

// TestOfflineDrain: persistent subscribers leave, their queues fill in the broker's store, and
// every message reaches them after they come back (3.1.1 and 5.0).
func TestOfflineDrain(t *testing.T) {
	port := startBroker(t)
	for _, v := range []byte{4, 5} {
		cfg := testConfig(port, Offline, 2, 1)
		cfg.Version = v
		cfg.Topic = fmt.Sprintf("offline%d", v)
		r := run(t, cfg)
		if r.Sent == 0 || r.Received != r.Sent || r.Gaps != 0 {
			t.Fatalf("v%d: sent %d, received %d after reconnecting (gaps %d)", v, r.Sent, r.Received, r.Gaps)
		}
		if r.DrainRate <= 0 {
			t.Fatalf("v%d: no drain rate reported: %+v", v, r)
		}
	}
}

func TestPersistentPairs(t *testing.T) {
	port := startBroker(t)
	cfg := testConfig(port, Pairs, 2, 1)
	cfg.Persistent = true
	r := run(t, cfg)
	if r.Received == 0 || *r.Loss != 0 {
		t.Fatalf("persistent pairs: received %d, loss %v", r.Received, *r.Loss)
	}
}
