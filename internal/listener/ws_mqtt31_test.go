package listener

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// connect31 is an MQTT 3.1 CONNECT: protocol name "MQIsdp", level 3, clean session, keep alive
// 60 s, client id "c1" (MQTT 3.1 §3.1).
var connect31 = []byte{0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1'}

// TestWebSocketMQTT31Client dials as MQTT.js with protocolVersion 3 does, offering only
// "mqttv3.1", and sends an MQTT 3.1 CONNECT over the connection: it arrives intact, and the
// answer goes back as a binary message.
func TestWebSocketMQTT31Client(t *testing.T) {
	ln := newWS(t, nil, WSOptions{})
	cc, sc := pair(t, ln, wsDial{protos: []string{"mqttv3.1"}})
	if cc.Subprotocol() != "mqttv3.1" {
		t.Fatalf("subprotocol %q", cc.Subprotocol())
	}
	if err := cc.WriteMessage(websocket.BinaryMessage, connect31); err != nil {
		t.Fatal(err)
	}
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(connect31))
	if _, err := io.ReadFull(sc, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, connect31) {
		t.Fatalf("server read % x, want % x", got, connect31)
	}
	connack := []byte{0x20, 0x02, 0x00, 0x00}
	if _, err := sc.Write(connack); err != nil {
		t.Fatal(err)
	}
	cc.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, msg, err := cc.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(msg, connack) {
		t.Fatalf("client read %d % x %v", typ, msg, err)
	}
}

// recordHandler keeps every record.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) take() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.recs
	h.recs = nil
	return r
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// TestWebSocketRefusalsLogged: a refused upgrade is logged at INFO with its reason; within a
// second, further refusals go to DEBUG and the next INFO line counts them.
func TestWebSocketRefusalsLogged(t *testing.T) {
	h := &recordHandler{}
	ln := newWS(t, nil, WSOptions{Logger: slog.New(h)})
	now := time.Unix(1000, 0)
	var nowMu sync.Mutex
	ln.(*wsListener).now = func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	advance := func(d time.Duration) { nowMu.Lock(); now = now.Add(d); nowMu.Unlock() }

	refuse := func(protos []string, path string) {
		t.Helper()
		if cc, _, err := (wsDial{url: wsURL(ln, false, path), protos: protos}).dial(); err == nil {
			cc.Close()
			t.Fatal("upgraded")
		}
	}
	refuse([]string{"wamp"}, "/mqtt")
	recs := h.take()
	if len(recs) != 1 || recs[0].Level != slog.LevelInfo || recs[0].Message != "websocket upgrade refused" ||
		attr(recs[0], "status") != "400" || !strings.Contains(attr(recs[0], "reason"), `"mqttv3.1"`) || attr(recs[0], "subprotocols") != "wamp" {
		t.Fatalf("records %v", recs)
	}

	refuse([]string{"mqtt"}, "/")
	refuse(nil, "/mqtt")
	recs = h.take()
	if len(recs) != 2 || recs[0].Level != slog.LevelDebug || recs[1].Level != slog.LevelDebug {
		t.Fatalf("refusals within a second: %v", recs)
	}
	if r := attr(recs[0], "reason"); r != "path / not served: MQTT over WebSocket is at /mqtt" {
		t.Errorf("wrong path reason %q", r)
	}

	advance(refusalLogInterval)
	refuse([]string{"MQTT"}, "/mqtt")
	recs = h.take()
	if len(recs) != 1 || recs[0].Level != slog.LevelInfo || attr(recs[0], "refusals_not_logged") != "2" {
		t.Fatalf("after the interval: %v", recs)
	}

	// A plain HTTP request for another path is not an MQTT client: not logged.
	advance(refusalLogInterval)
	resp, err := http.Get("http://" + ln.Addr().String() + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if recs := h.take(); resp.StatusCode != http.StatusNotFound || len(recs) != 0 {
		t.Errorf("favicon: %d, records %v", resp.StatusCode, recs)
	}
}
