package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// pipeClient connects a v3.1.1 client over net.Pipe, subscribes it to filter at qos, and then
// drains (and discards) everything the server sends it.
func pipeClient(tb testing.TB, srv *Server, id, filter string, qos byte) {
	tb.Helper()
	cli, serverSide := net.Pipe()
	go srv.ServeConn(serverSide, pipeListener)
	tb.Cleanup(func() { cli.Close() })
	rd := bufio.NewReader(cli)
	expect := func(t packet.Type) {
		h, err := packet.ReadFixedHeader(rd)
		if err != nil || h.Type != t {
			tb.Fatalf("%s: want %s, got %s (%v)", id, t, h.Type, err)
		}
		if _, err := io.CopyN(io.Discard, rd, int64(h.Remaining)); err != nil {
			tb.Fatal(err)
		}
	}
	cli.Write((&packet.Connect{ClientID: id, CleanStart: true}).Append(nil, packet.V311))
	expect(packet.CONNACK)
	sub := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}
	cli.Write(sub.Append(nil, packet.V311))
	expect(packet.SUBACK)
	go io.Copy(io.Discard, rd)
}

func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	return newTestServerWith(tb, testOptions(tb, "")) // QoS 0 fan-out does not touch the store
}

// gateAll allows everything, but proves no subscription covered: every delivery passes the
// per-message read gate (gate.go), as for a subscriber whose topic read rule does not provably
// contain its filter (issue 11: per-delivery read checks).
type gateAll struct{ allowAll }

func (gateAll) ReceiveCovered(*auth.Identity, string) bool { return false }

// newFanoutServer is newTestServer, with every delivery gated when gated is set.
func newFanoutServer(tb testing.TB, gated bool) *Server {
	tb.Helper()
	o := testOptions(tb, "")
	if gated {
		o.Authorizer = gateAll{}
	}
	return newTestServerWith(tb, o)
}

func newTestServerWith(tb testing.TB, o Options) *Server {
	tb.Helper()
	srv, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return srv
}

// waitSubscriptions waits until the vhost's index holds n subscriptions.
func waitSubscriptions(tb testing.TB, v *Vhost, n int) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); v.index.Len() < n; {
		if time.Now().After(deadline) {
			tb.Fatalf("want %d subscriptions, have %d", n, v.index.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFanoutQoS0DoesNotAllocate proves that delivering one published message to many QoS 0
// subscribers allocates nothing per subscriber once buffers have grown: the route, the
// de-duplication, the encoding into each connection's buffer and the write loops.
func TestFanoutQoS0DoesNotAllocate(t *testing.T) {
	for _, gated := range []bool{false, true} {
		t.Run(fmt.Sprintf("gated=%v", gated), func(t *testing.T) { testFanoutQoS0DoesNotAllocate(t, gated) })
	}
}

func testFanoutQoS0DoesNotAllocate(t *testing.T, gated bool) {
	srv := newFanoutServer(t, gated)
	const subs = 16
	for i := range subs {
		pipeClient(t, srv, fmt.Sprintf("sub-%d", i), "bench/+/x", 0)
	}
	v := srv.Vhost(DefaultVhost)
	waitSubscriptions(t, v, subs)
	m := &Message{Topic: "bench/a/x", Payload: make([]byte, 64)}
	var rs routeScratch
	for range 1000 { // grow every buffer to its steady-state size
		v.publish(m, &rs)
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if n := v.publish(m, &rs); n != subs {
			t.Fatalf("delivered to %d sessions, want %d", n, subs)
		}
	})
	// The write loops run concurrently and are measured too; allow for a stray runtime allocation.
	if allocs > 0.1 {
		t.Fatalf("QoS 0 fan-out to %d subscribers: %.2f allocations per message, want 0", subs, allocs)
	}
}

// BenchmarkFanoutQoS0 measures one message routed, encoded and written to N subscribers, end to
// end in process (net.Pipe connections drained by readers). gated=true passes every delivery
// through the per-message read gate: the cost of issue 11's per-delivery check.
func BenchmarkFanoutQoS0(b *testing.B) {
	for _, c := range []struct {
		subs  int
		gated bool
	}{{1, false}, {16, false}, {16, true}, {256, false}, {256, true}} {
		subs := c.subs
		b.Run(fmt.Sprintf("subs=%d/gated=%v", subs, c.gated), func(b *testing.B) {
			srv := newFanoutServer(b, c.gated)
			for i := range subs {
				pipeClient(b, srv, fmt.Sprintf("sub-%d", i), "bench/#", 0)
			}
			v := srv.Vhost(DefaultVhost)
			waitSubscriptions(b, v, subs)
			m := &Message{Topic: "bench/a/x", Payload: make([]byte, 64)}
			var rs routeScratch
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				v.publish(m, &rs)
			}
			b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkConnect measures one connection's life in process: CONNECT, CONNACK, DISCONNECT and
// the server side's teardown (guards the connect path found by profiling: logger set-up per
// connection and the CONNACK hand-over).
func BenchmarkConnect(b *testing.B) {
	srv := newTestServer(b)
	connect := (&packet.Connect{ClientID: "bench-connect", CleanStart: true, KeepAlive: 30}).Append(nil, packet.V311)
	disconnect := (&packet.Disconnect{}).Append(nil, packet.V311)
	var ack [4]byte
	b.ReportAllocs()
	for b.Loop() {
		cli, serverSide := net.Pipe()
		done := make(chan struct{})
		go func() { srv.ServeConn(serverSide, pipeListener); close(done) }()
		cli.Write(connect)
		if _, err := io.ReadFull(cli, ack[:]); err != nil || ack[0] != 0x20 {
			b.Fatalf("CONNACK: %x %v", ack, err)
		}
		cli.Write(disconnect)
		<-done
		cli.Close()
	}
}

// BenchmarkFaninQoS0 measures many publishers delivering to one subscriber at once: every
// delivery takes that subscriber's session lock (the contention found in the fanin profile).
func BenchmarkFaninQoS0(b *testing.B) {
	srv := newTestServer(b)
	pipeClient(b, srv, "sink", "fanin/+", 0)
	v := srv.Vhost(DefaultVhost)
	waitSubscriptions(b, v, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := &Message{Topic: "fanin/x", Payload: make([]byte, 64)}
		var rs routeScratch
		for pb.Next() {
			v.publish(m, &rs)
		}
	})
}

// TestReadBufferRefilledWithoutLoss sends PUBLISH packets worth several read buffers in one
// write, so packets straddle the end of the buffer and the buffer is given back and borrowed
// again between them: every message still arrives, in order.
func TestReadBufferRefilledWithoutLoss(t *testing.T) {
	srv := newTestServer(t)
	sub, subSide := net.Pipe()
	go srv.ServeConn(subSide, pipeListener)
	t.Cleanup(func() { sub.Close() })
	rd := bufio.NewReader(sub)
	next := func() packet.Packet {
		h, err := packet.ReadFixedHeader(rd)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, h.Remaining)
		if _, err := io.ReadFull(rd, body); err != nil {
			t.Fatal(err)
		}
		p, err := packet.Decode(h, body, packet.V311)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub.Write((&packet.Connect{ClientID: "counter", CleanStart: true}).Append(nil, packet.V311))
	next()
	sub.Write((&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "grow/#"}}}).Append(nil, packet.V311))
	next()

	pub, pubSide := net.Pipe()
	go srv.ServeConn(pubSide, pipeListener)
	t.Cleanup(func() { pub.Close() })
	go io.Copy(io.Discard, pub)
	burst := (&packet.Connect{ClientID: "burst", CleanStart: true}).Append(nil, packet.V311)
	const n = 6 * readBufferSize / 16 // each PUBLISH is 15 bytes
	for i := range n {
		burst = (&packet.Publish{Topic: "grow/x", Payload: fmt.Appendf(nil, "%05d", i)}).Append(burst, packet.V311)
	}
	go pub.Write(burst)
	sub.SetReadDeadline(time.Now().Add(10 * time.Second)) // a lost message fails, not hangs
	for i := range n {
		p, ok := next().(*packet.Publish)
		if !ok || string(p.Payload) != fmt.Sprintf("%05d", i) {
			t.Fatalf("message %d: got %+v", i, p)
		}
	}
}
