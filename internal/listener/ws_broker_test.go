package listener_test

// End to end over a real broker: the listener's WebSocket with the broker's MQTT 3.1 support and
// the auth chain's browser rule. An external test package, so that the listener package itself
// stays free of broker imports.

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/logbuf"
)

// connect31 sends an MQTT 3.1 CONNECT as guest/guest (MQTT 3.1 §3.1: "MQIsdp", level 3, user
// name and password flags) and returns the CONNACK's bytes.
func connect31(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	var vh bytes.Buffer
	str := func(s string) { vh.Write([]byte{byte(len(s) >> 8), byte(len(s))}); vh.WriteString(s) }
	str("MQIsdp")
	vh.Write([]byte{3, 0xC2, 0, 60}) // level 3; user name, password, clean session; keep alive 60
	str("js-client")
	str("guest")
	str("guest")
	pkt := append([]byte{0x10, byte(vh.Len())}, vh.Bytes()...)
	if err := ws.WriteMessage(websocket.BinaryMessage, pkt); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	for len(got) < 4 {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading CONNACK: %v (so far % x)", err, got)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d", typ)
		}
		got = append(got, msg...)
	}
	return got
}

func TestMQTT31OverWebSocketEndToEnd(t *testing.T) {
	cfg := config.Default()
	cfg.Main.DataDir = ""
	cfg.MQTT.SysInterval = 0
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.MQTT.Port, cfg.MQTT.WSPort, cfg.Mgmt.Port = 0, 1, 0
	a, err := app.New(cfg, app.Options{Logger: log, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the broker did not stop")
		}
	})
	ln := a.Addr("ws")
	url := "ws://" + ln.String() + "/mqtt"

	// MQTT.js with protocolVersion 3 offers only "mqttv3.1"; the default user from loopback,
	// with no Origin header (a program, not a web page), is accepted.
	dialer := websocket.Dialer{Subprotocols: []string{"mqttv3.1"}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("upgrade offering only mqttv3.1: %v (%v)", err, resp)
	}
	defer ws.Close()
	if ws.Subprotocol() != "mqttv3.1" {
		t.Errorf("subprotocol %q", ws.Subprotocol())
	}
	if got := connect31(t, ws); !bytes.Equal(got, []byte{0x20, 0x02, 0x00, 0x00}) {
		t.Fatalf("CONNACK % x, want accepted", got)
	}

	// The same from a web page on the listener's own origin: refused (return code 5), and the
	// log says why — the browser, not the address (it is 127.0.0.1).
	page, resp, err := dialer.Dial(url, http.Header{"Origin": {"http://" + ln.String()}})
	if err != nil {
		t.Fatalf("upgrade from the page: %v (%v)", err, resp)
	}
	defer page.Close()
	if got := connect31(t, page); !bytes.Equal(got[:4], []byte{0x20, 0x02, 0x00, 0x05}) {
		t.Fatalf("CONNACK % x, want return code 5 (not authorized)", got)
	}
	// The broker logs the refusal before it writes the CONNACK.
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "login refused") {
			line = l
		}
	}
	if !strings.Contains(line, "browser Origin header") || !strings.Contains(line, "DNS rebinding") || strings.Contains(line, "only from a loopback address") {
		t.Errorf("refusal log line: %s", line)
	}
}
