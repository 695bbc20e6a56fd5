package broker

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/logbuf"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestPanicClosesOneConnectionOnly: a panic in a connection's read loop while it holds the
// vhost's retainMu and its session's mu is recovered and logged with its stack; that connection
// closes, no lock stays held, and the vhost keeps serving: another client subscribes (retainMu,
// a session lock) and a new CONNECT for the same client id attaches (Vhost.mu).
func TestPanicClosesOneConnectionOnly(t *testing.T) {
	var logs logbuf.Buffer
	o := testOptions(t, "")
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	testHookLocked = func(c *client) {
		if c.clientID == "boom" {
			panic("injected")
		}
	}
	defer func() { testHookLocked = nil }()

	boom := pipeConnect(t, srv, "boom")
	boom.Write((&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#"}}}).Append(nil, packet.V311))
	if _, err := packet.ReadFixedHeader(bufio.NewReader(boom)); err == nil {
		t.Fatal("the panicking connection answered instead of closing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "panicked") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the panic:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); !strings.Contains(out, "injected") || !strings.Contains(out, "goroutine") {
		t.Fatalf("the panic is logged without its stack:\n%s", out)
	}

	// Everything that needs the locks the panic held still works.
	other := pipeConnect(t, srv, "other")
	rd := bufio.NewReader(other)
	other.Write((&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#"}}}).Append(nil, packet.V311))
	if h, err := packet.ReadFixedHeader(rd); err != nil || h.Type != packet.SUBACK {
		t.Fatalf("another client's SUBSCRIBE after the panic: %v %v", h.Type, err)
	}
	again := pipeConnect(t, srv, "boom") // the same client id attaches again
	again.Close()
}

// pipeConnect connects a 3.1.1 client over net.Pipe and reads its CONNACK.
func pipeConnect(t *testing.T, srv *Server, id string) net.Conn {
	t.Helper()
	cli, serverSide := net.Pipe()
	go srv.ServeConn(serverSide, pipeListener)
	t.Cleanup(func() { cli.Close() })
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	cli.Write((&packet.Connect{ClientID: id, CleanStart: true}).Append(nil, packet.V311))
	h, err := packet.ReadFixedHeader(bufio.NewReader(cli))
	if err != nil || h.Type != packet.CONNACK {
		t.Fatalf("%s: CONNACK: %v %v", id, h.Type, err)
	}
	return cli
}
