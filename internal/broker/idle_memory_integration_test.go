package broker_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// idleConns is how many idle connections the idle memory tests hold: enough for the per
// connection figure to drown the broker's fixed costs, few enough to take about a second.
const idleConns = 2000

// TestIdleConnectionMemory bounds what a connection that only connected costs the broker's
// process while it is idle (issue 12; bench/compare's "memory per idle connection" row): heap in
// use plus goroutine stacks, after GC, per connection, including this test's own end of each TCP
// connection (about 0.3 KiB). Before read and write buffers were released when idle it measured
// about 18 KiB (main at 5372ed8): a 2 KiB read buffer, a write loop parked with its own stack,
// and a read loop parked on a stack grown by CONNECT. Each connection has answered a PINGREQ
// after CONNECT [MQTT-3.12.4-1], so its write loop has run and ended (after writerLinger) and its
// read buffer has been borrowed and given back. Half are MQTT 5.0, half 3.1.1.
func TestIdleConnectionMemory(t *testing.T) {
	idleMemory(t, 8<<10, func(c net.Conn, v packet.Version, id string) error {
		return exchange(c, v, []step{
			{rawConnect(v, id, true, 60, nil), []packet.Type{packet.CONNACK}},
			{[]byte{0xC0, 0}, []packet.Type{packet.PINGRESP}},
		})
	})
}

// TestIdleDeviceMemory bounds what an idle connection costs after it behaved like a device:
// it subscribed to its own topic, published a QoS 1 message there, received it, acknowledged it
// and pinged. On top of TestIdleConnectionMemory's figure come its subscription (in the session
// and in the vhost's index, about 1.5 KiB) and the in-flight table of its session. Its read loop
// has routed a message and still parks on a small stack (readLoop); before, it measured about
// 19 KiB.
func TestIdleDeviceMemory(t *testing.T) {
	idleMemory(t, 10<<10, func(c net.Conn, v packet.Version, id string) error {
		topic := "devices/" + id
		return exchange(c, v, []step{
			{rawConnect(v, id, true, 60, nil), []packet.Type{packet.CONNACK}},
			{rawSubscribe(v, 1, nil, rawSub{topic, 1}), []packet.Type{packet.SUBACK}},
			{rawPublish(v, 1, false, false, topic, 2, nil, []byte("21.5")), []packet.Type{packet.PUBACK, packet.PUBLISH}},
			{nil, nil}, // the PUBACK of the delivery, built once its packet id is known
			{[]byte{0xC0, 0}, []packet.Type{packet.PINGRESP}},
		})
	})
}

// idleMemory opens idleConns connections to a fresh broker, runs act on each, and fails if the
// broker's process then holds more than bound bytes of heap and stacks per connection.
func idleMemory(t *testing.T, bound int, act func(c net.Conn, v packet.Version, id string) error) {
	if raceEnabled {
		t.Skip("memory figures mean nothing under the race detector")
	}
	addr, srv := startBroker(t, nil)
	before := settledMem()
	goroutines := runtime.NumGoroutine()

	conns := make([]net.Conn, 0, idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idleConns {
		c, err := net.DialTimeout("tcp", addr, waitTimeout)
		if errors.Is(err, syscall.EMFILE) {
			t.Skipf("only %d connections open before running out of file descriptors", i)
		}
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		v := packet.V311
		if i%2 == 1 {
			v = packet.V5
		}
		if err := act(c, v, fmt.Sprintf("idle-%d", i)); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	waitConnected(t, srv, idleConns)
	// A write loop lingers a moment after its last packet (writerLinger): wait until only the
	// read loops are left, one per connection.
	for end := time.Now().Add(waitTimeout); runtime.NumGoroutine() > goroutines+idleConns; {
		if time.Now().After(end) {
			t.Fatalf("%d goroutines for %d idle connections (%d before)", runtime.NumGoroutine(), idleConns, goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := settledMem()

	heap := float64(after.HeapInuse-before.HeapInuse) / idleConns
	stack := float64(after.StackInuse-before.StackInuse) / idleConns
	t.Logf("per idle connection: heap in use %.0f B, goroutine stacks %.0f B, together %.2f KiB (bound %.1f KiB)",
		heap, stack, (heap+stack)/1024, float64(bound)/1024)
	if heap+stack > float64(bound) {
		t.Fatalf("an idle connection costs %.0f bytes (heap %.0f, stacks %.0f), more than %d", heap+stack, heap, stack, bound)
	}
}

// step is one packet a test client sends and the packets it waits for in answer (in any order).
type step struct {
	send []byte
	want []packet.Type
}

// exchange runs steps on c, each step's answers read before the next step is sent. A step
// without bytes sends the PUBACK of the last PUBLISH received.
func exchange(c net.Conn, v packet.Version, steps []step) error {
	c.SetDeadline(time.Now().Add(waitTimeout))
	defer c.SetDeadline(time.Time{})
	rd := bufio.NewReaderSize(c, 256) // garbage once this returns: the test's side holds no buffer
	var deliveryID uint16
	for _, st := range steps {
		if st.send == nil {
			st.send = rawAck(packet.PUBACK, deliveryID)
		}
		if _, err := c.Write(st.send); err != nil {
			return err
		}
		for len(st.want) > 0 {
			h, err := packet.ReadFixedHeader(rd)
			if err != nil {
				return fmt.Errorf("waiting for %v: %w", st.want, err)
			}
			body := make([]byte, h.Remaining)
			if _, err := io.ReadFull(rd, body); err != nil {
				return err
			}
			i := slices.Index(st.want, h.Type)
			if i < 0 {
				return fmt.Errorf("got %s, want %v", h.Type, st.want)
			}
			st.want = slices.Delete(st.want, i, i+1)
			p, err := packet.Decode(h, body, v)
			if err != nil {
				return err
			}
			switch p := p.(type) {
			case *packet.Connack:
				if p.ReasonCode != packet.Success {
					return fmt.Errorf("CONNACK %v", p.ReasonCode)
				}
			case *packet.Publish:
				deliveryID = p.PacketID
			}
		}
	}
	if rd.Buffered() != 0 {
		return fmt.Errorf("%d unexpected bytes", rd.Buffered())
	}
	return nil
}

// settledMem returns the memory statistics after two collections (the second lets parked
// goroutines' stacks shrink once more and frees what the first found unreachable).
func settledMem() runtime.MemStats {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms
}

// TestConnectionsReuseBuffers: a connection that ends gives its read and write buffers back to
// the pools, and its busy periods' worker to the next connection, however it ends (a DISCONNECT [MQTT-3.14.4-1], the client closing the socket, a
// malformed packet [MQTT-4.8.0-1]), so a stream of connections reuses a handful of buffers.
// Before, each one that ended while reading left its 8 KiB read buffer to the garbage collector:
// a reconnect storm paid a garbage collection per few hundred connections for it.
func TestConnectionsReuseBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops a share of what it is given")
	}
	addr, _ := startBroker(t, nil)
	// No collection while counting: sync.Pool empties itself over two of them.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ends := []struct {
		name string
		end  func(c net.Conn, v packet.Version) error
	}{
		{"DISCONNECT", func(c net.Conn, v packet.Version) error {
			_, err := c.Write((&packet.Disconnect{}).Append(nil, v))
			return err
		}},
		{"close", func(net.Conn, packet.Version) error { return nil }},
		{"malformed", func(c net.Conn, _ packet.Version) error {
			_, err := c.Write([]byte{0x30, 0x02, 0x00, 0x05}) // a topic length beyond the packet
			return err
		}},
	}
	run := func(n int) {
		for i := range n {
			v := packet.V311
			if i%2 == 1 {
				v = packet.V5
			}
			c, err := net.DialTimeout("tcp", addr, waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			err = exchange(c, v, []step{
				{rawConnect(v, fmt.Sprintf("reuse-%d", i), true, 60, nil), []packet.Type{packet.CONNACK}},
				{[]byte{0xC0, 0}, []packet.Type{packet.PINGRESP}},
			})
			if err == nil {
				err = ends[i%len(ends)].end(c, v)
			}
			if err != nil {
				t.Fatalf("connection %d (%s): %v", i, ends[i%len(ends)].name, err)
			}
			// Wait for the broker's end of it: it closes after a DISCONNECT or a malformed
			// packet, and answers a close with its own.
			if ends[i%len(ends)].name == "close" {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection %d (%s): waiting for the broker to close: %v", i, ends[i%len(ends)].name, err)
			}
			c.Close()
		}
	}
	run(6)
	r0, w0 := broker.BuffersMadeForTest()
	g0 := broker.WorkersStartedForTest()
	const n = 150
	run(n)
	r1, w1 := broker.BuffersMadeForTest()
	// A few: each P's pool keeps one buffer where another P cannot take it.
	if few := uint64(2*runtime.GOMAXPROCS(0) + 2); r1-r0 > few || w1-w0 > few {
		t.Fatalf("%d connections, one after the other, made %d read and %d write buffers; want %d at most", n, r1-r0, w1-w0, few)
	}
	// Their 450 busy periods (CONNECT, PINGREQ, the end) ran on a few workers (workers.go),
	// not on a new goroutine each. Other tests may run at the same time: a bound, not an exact
	// count.
	if g := broker.WorkersStartedForTest() - g0; g > n/3 {
		t.Fatalf("%d connections' busy periods started %d workers; want them reused", n, g)
	}
}

// TestSilentConnectionsHoldNoWorker: a connection that has sent nothing yet is waited for by
// its read loop alone, parked in the poller; no worker (workers.go) and no read buffer is
// taken until CONNECT's first byte arrives. A crowd of silent connections costs what idle
// ones cost, until connectTimeout ends them.
func TestSilentConnectionsHoldNoWorker(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops a share of what it is given")
	}
	addr, _ := startBroker(t, nil)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	time.Sleep(100 * time.Millisecond) // the workers of earlier tests have ended
	g0 := broker.WorkersStartedForTest()
	r0, _ := broker.BuffersMadeForTest()
	const n = 40
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	time.Sleep(200 * time.Millisecond)
	if g := broker.WorkersStartedForTest() - g0; g != 0 {
		t.Fatalf("%d silent connections started %d workers", n, g)
	}
	if r, _ := broker.BuffersMadeForTest(); r-r0 > 2 {
		t.Fatalf("%d silent connections made %d read buffers", n, r-r0)
	}
	// Once they speak, they are served.
	for i, c := range conns {
		if err := exchange(c, packet.V311, []step{{rawConnect(packet.V311, fmt.Sprintf("silent-%d", i), true, 60, nil), []packet.Type{packet.CONNACK}}}); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if broker.WorkersStartedForTest() == g0 {
		t.Fatal("no worker ran the CONNECTs")
	}
}

// TestCloseWithoutWriteLoop: a connection that ends with nothing left to send (its client's
// DISCONNECT [MQTT-3.14.4-1], or its client closing) is closed by its read loop; no write loop
// is started for it. One that must send a DISCONNECT with a reason code first (a v5 protocol
// error, [MQTT-4.13.2-1]) gets a write loop, and the client reads the DISCONNECT.
func TestCloseWithoutWriteLoop(t *testing.T) {
	addr, _ := startBroker(t, nil)
	w0 := broker.WriteLoopsStartedForTest()
	for i := range 10 {
		v := []packet.Version{packet.V311, packet.V5}[i%2]
		r := dialRaw(t, addr, v)
		r.connect(fmt.Sprintf("quiet-%d", i), true, 60, nil)
		if i%3 == 2 {
			r.conn.(*net.TCPConn).CloseWrite()
		} else {
			r.send((&packet.Disconnect{}).Append(nil, v))
		}
		r.expectClosedSilently()
	}
	// Other tests may run at the same time (t.Parallel): a bound, not an exact count.
	if n := broker.WriteLoopsStartedForTest() - w0; n > 5 {
		t.Fatalf("10 connections that ended with nothing to send started %d write loops", n)
	}

	r := dialRaw(t, addr, packet.V5)
	r.connect("loud", true, 60, nil)
	r.send([]byte{0x30, 0x02, 0x00, 0x05}) // a topic length beyond the packet
	r.expectDisconnect(packet.MalformedPacket)
}

// A quiet device's keep-alive is answered by its read path: PINGRESP goes out in one write
// without a write loop started for it (writer.go, pong), for 3.1.1 and 5.0, and a real client
// with a one-second keep alive stays connected on those answers [MQTT-3.12.4-1].
func TestPingWithoutWriteLoop(t *testing.T) {
	addr, _ := startBroker(t, nil)
	w0 := broker.WriteLoopsStartedForTest()
	for i := range 10 {
		v := []packet.Version{packet.V311, packet.V5}[i%2]
		r := dialRaw(t, addr, v)
		r.connect(fmt.Sprintf("pinger-%d", i), true, 60, nil)
		ping := func() {
			r.send((&packet.Pingreq{}).Append(nil, v))
			expect[*packet.Pingresp](r)
		}
		ping()
		ping()
		ping()
		if i%3 == 0 {
			time.Sleep(80 * time.Millisecond) // past a write loop's linger, had one started
			ping()
		}
	}
	// 34 PINGREQs on 10 connections; through write loops they started at least 10. Other tests
	// may run at the same time (t.Parallel): a bound, not an exact count.
	if n := broker.WriteLoopsStartedForTest() - w0; n > 5 {
		t.Fatalf("34 keep-alives of quiet connections started %d write loops", n)
	}

	c := connectV3(t, addr, "paho-pinger", true, func(o *mqtt.ClientOptions) {
		o.SetKeepAlive(time.Second).SetPingTimeout(time.Second)
	})
	time.Sleep(2500 * time.Millisecond) // two keep-alive periods: paho pings and waits for each answer
	select {
	case err := <-c.lost:
		t.Fatalf("paho client with keep alive 1 s lost its connection: %v", err)
	default:
	}
	if !c.c.IsConnectionOpen() {
		t.Fatal("paho client with keep alive 1 s is no longer connected")
	}
}

// Keep-alives racing deliveries: a subscriber that pings while a publisher floods it gets every
// PINGRESP and a stream in which every packet decodes (rawClient.read fails on one that does
// not), whether the PINGRESP left from its read path or joined a write loop's batch.
func TestPingsRaceDeliveries(t *testing.T) {
	addr, _ := startBroker(t, nil)
	sub := dialRaw(t, addr, packet.V311)
	sub.connect("ping-sub", true, 60, nil)
	sub.subscribe(1, "race/#", 0, nil)
	pub := dialRaw(t, addr, packet.V311)
	pub.connect("ping-pub", true, 60, nil)

	const pings, publishes = 300, 20000
	go func() {
		msg := rawPublish(packet.V311, 0, false, false, "race/x", 0, nil, make([]byte, 32))
		batch := bytes.Repeat(msg, 100)
		for range publishes / 100 {
			if _, err := pub.conn.Write(batch); err != nil {
				return
			}
		}
	}()
	go func() {
		for range pings {
			if _, err := sub.conn.Write((&packet.Pingreq{}).Append(nil, packet.V311)); err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	var gotPings, gotPublishes int
	for gotPings < pings {
		p, err := sub.read(waitTimeout)
		if err != nil {
			t.Fatalf("after %d PINGRESPs and %d PUBLISHes: %v", gotPings, gotPublishes, err)
		}
		switch p.p.(type) {
		case *packet.Pingresp:
			gotPings++
		case *packet.Publish:
			gotPublishes++
		default:
			t.Fatalf("unexpected %s", p)
		}
	}
	if gotPublishes == 0 {
		t.Fatal("no PUBLISH arrived while the subscriber pinged")
	}
}
