package broker_test

// Before login a client costs almost nothing (issue 11): memory for a CONNECT grows with the
// bytes received, never with the length claimed; a CONNECT above max_connect_size is refused
// before its body is read; and what all unauthenticated connections hold together is bounded
// (Server busy beyond it) and reported. Raw sockets: no client library sends a claim it does
// not keep.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// claimConnect opens a connection and sends the start of a CONNECT claiming size bytes of
// Remaining Length: the fixed header and the protocol name and level, nothing more.
func claimConnect(t *testing.T, addr string, size int, v packet.Version) net.Conn {
	t.Helper()
	conn := dial(t, addr)
	t.Cleanup(func() { conn.Close() })
	hdr := []byte{0x10}
	for n := size; ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			b |= 0x80
		}
		hdr = append(hdr, b)
		if n == 0 {
			break
		}
	}
	hdr = append(hdr, 0, 4, 'M', 'Q', 'T', 'T', byte(v))
	if _, err := conn.Write(hdr); err != nil {
		t.Fatal(err)
	}
	return conn
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// answer reads what the server sends before it closes conn: a CONNACK's reason code, or -1
// when it closes without one.
func answer(t *testing.T, conn net.Conn) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	rd := bufio.NewReader(conn)
	b, err := rd.ReadByte()
	if err == io.EOF {
		return -1
	}
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if b != 0x20 {
		t.Fatalf("first byte %#x, want a CONNACK", b)
	}
	rest := make([]byte, 3)
	if _, err := io.ReadFull(rd, rest); err != nil {
		t.Fatal(err)
	}
	return int(rest[2])
}

// The attack of issue 11, with the defaults: 24 sockets each claim a 200 MB CONNECT. Each is
// refused at its fixed header (v5 CONNACK 0x95 Packet too large; 3.1.1 closed), and the heap
// does not grow (before the fix: by about 4.8 GB).
func TestPreauthClaimRefusedAtHeader(t *testing.T) {
	addr, srv := startBroker(t, nil)
	before := heapInUse()
	conns := make([]net.Conn, 24)
	for i := range conns {
		v := packet.V5
		if i%2 == 1 {
			v = packet.V311
		}
		conns[i] = claimConnect(t, addr, 200_000_000, v)
	}
	for i, conn := range conns {
		want := int(packet.PacketTooLarge)
		if i%2 == 1 {
			want = -1
		}
		if got := answer(t, conn); got != want {
			t.Fatalf("socket %d: answer %d, want %d", i, got, want)
		}
	}
	if grew := int64(heapInUse()) - int64(before); grew > 8<<20 {
		t.Fatalf("the heap grew by %d bytes for 24 refused claims", grew)
	}
	if n := srv.PreauthBytes(); n != 0 {
		t.Fatalf("PreauthBytes = %d after every claim was refused", n)
	}
}

// With max_connect_size raised, claims that never arrive hold at most one read chunk each, not
// their claim; the claims are reported by PreauthBytes; and a claim beyond what is left of the
// server-wide budget (64 MiB) is refused with Server busy.
func TestPreauthClaimsNeverArrive(t *testing.T) {
	addr, srv := startBroker(t, func(c *config.Config) {
		c.MQTT.MaxConnectSize, c.MQTT.MaxPacketSize, c.MQTT.MaxQueuedBytes = 255<<20, 255<<20, 255<<20
	})
	before := heapInUse()
	const n, claim = 24, 2 << 20 // 48 MiB claimed in all
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = claimConnect(t, addr, claim, packet.V5)
	}
	eventually(t, "every claim being read", func() bool { return srv.PreauthBytes() == n*claim })
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d connections claiming %d MiB each: heap +%d KiB, PreauthBytes %d MiB", n, claim>>20, grew>>10, srv.PreauthBytes()>>20)
	if grew > n*(64<<10)+(4<<20) {
		t.Fatalf("the heap grew by %d bytes for %d bytes received", grew, n*7)
	}
	// 48 MiB of the 64 MiB budget are claimed: a 20 MB claim does not fit.
	big := claimConnect(t, addr, 20_000_000, packet.V5)
	if got := answer(t, big); got != int(packet.ServerBusy) {
		t.Fatalf("a claim beyond the budget: answer %#x, want 0x89 Server busy", got)
	}
	for _, c := range conns {
		c.Close()
	}
	eventually(t, "the claims released", func() bool { return srv.PreauthBytes() == 0 })
}

// TestStalledConnectsHoldLittleStack: a CONNECT that stops half way holds the worker that reads
// it (workers.go) until connectTimeout. Workers are reused with the stacks earlier busy periods
// grew, so a crowd of stalled CONNECTs on a busy broker is the case to bound: after a
// collection (which shrinks the stacks of parked goroutines to what they use), each costs its
// read loop's and its worker's stacks, a few KiB, not the grown stacks of the workers it took.
func TestStalledConnectsHoldLittleStack(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes mean nothing under the race detector")
	}
	addr, _ := startBroker(t, nil)
	// A busy broker first: workers whose stacks routed messages and ran logins.
	for i := range 32 {
		c, err := net.DialTimeout("tcp", addr, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := exchange(c, packet.V5, []step{
			{rawConnect(packet.V5, fmt.Sprintf("busy-%d", i), true, 60, nil), []packet.Type{packet.CONNACK}},
			{rawSubscribe(packet.V5, 1, nil, rawSub{"busy/#", 1}), []packet.Type{packet.SUBACK}},
			{rawPublish(packet.V5, 1, false, false, "busy/x", 2, nil, []byte("x")), []packet.Type{packet.PUBACK, packet.PUBLISH}},
		}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var ms runtime.MemStats
	stacks := func() uint64 { runtime.GC(); runtime.GC(); runtime.ReadMemStats(&ms); return ms.StackInuse }
	before := stacks()
	const n = 200
	for range n {
		claimConnect(t, addr, 1<<10, packet.V5) // 1 KiB claimed, 7 bytes sent
	}
	time.Sleep(200 * time.Millisecond) // every CONNECT's first bytes read
	per := (float64(stacks()) - float64(before)) / n
	t.Logf("stacks per stalled CONNECT: %.0f B", per)
	if per > 16<<10 {
		t.Fatalf("each stalled CONNECT holds %.0f bytes of goroutine stacks; want at most 16 KiB", per)
	}
}
