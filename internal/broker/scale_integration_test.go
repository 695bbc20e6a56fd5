package broker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// subscribeMany subscribes a persistent session to n filters, one SUBACK-confirmed SUBSCRIBE
// each, and returns the WAL bytes each group of `every` SUBSCRIBEs wrote.
func subscribeMany(t *testing.T, addr string, srv *broker.Server, n, every int) []uint64 {
	raw := dialRaw(t, addr, packet.V5)
	raw.connect("many", true, 0, props(pU32(packet.PropSessionExpiry, 3600)))
	var perGroup []uint64
	last := broker.StoreWALBytesForTest(srv)
	for i := range n {
		pid := uint16(i%65535 + 1)
		if sa := raw.subscribe(pid, fmt.Sprintf("sensors/%06d/+/temperature", i), 1, nil); sa.ReasonCodes[0] != 1 {
			t.Fatalf("SUBSCRIBE %d: %v", i, sa.ReasonCodes[0])
		}
		if (i+1)%every == 0 {
			now := broker.StoreWALBytesForTest(srv)
			perGroup = append(perGroup, now-last)
			last = now
		}
	}
	raw.conn.Close()
	return perGroup
}

// A SUBSCRIBE on a persistent session writes the same few bytes whatever the session already
// has: the 2,000th costs what the 1st cost (it used to rewrite the whole session), and the
// subscriptions are all there after a restart.
func TestSubscribeWritesO1(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Config) { c.Main.DataDir = dir; c.Main.Fsync = "interval" }
	addr, srv := startBroker(t, mod)
	groups := subscribeMany(t, addr, srv.Server, 2000, 500)
	first, lastG := groups[0], groups[len(groups)-1]
	t.Logf("WAL bytes per 500 SUBSCRIBEs: %v", groups)
	if lastG > first*3/2 {
		t.Fatalf("the last 500 SUBSCRIBEs wrote %d bytes, the first 500 %d: not O(1) per SUBSCRIBE", lastG, first)
	}
	if per := first / 500; per > 512 {
		t.Fatalf("%d WAL bytes per SUBSCRIBE", per)
	}
	waitConnected(t, srv, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	srv.Close(ctx)
	cancel()
	_, srv2 := startBroker(t, mod)
	if got := stats(srv2).Subscriptions; got != 2000 {
		t.Fatalf("%d subscriptions after a restart, want 2000", got)
	}
}

// TURNSTILE_SCALE_SUBS=100000 go test -run TestSubscribeScale -v ./internal/broker/: one
// persistent session subscribes to that many filters (one SUBSCRIBE each, fsync=always, each
// SUBACK after its write is durable), then the broker restarts and recovers them all. It logs
// the time and the WAL bytes written. Skipped unless the variable is set.
func TestSubscribeScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TURNSTILE_SCALE_SUBS"))
	if n <= 0 {
		t.Skip("set TURNSTILE_SCALE_SUBS to the number of subscriptions")
	}
	dir := t.TempDir()
	mod := func(c *config.Config) { c.Main.DataDir = dir }
	addr, srv := startBroker(t, mod)
	start := time.Now()
	groups := subscribeMany(t, addr, srv.Server, n, n/10)
	took := time.Since(start)
	var total uint64
	for _, g := range groups {
		total += g
	}
	t.Logf("%d SUBSCRIBEs on one persistent session: %v (%.0f/s), WAL bytes written %d (%.1f MB, %d per SUBSCRIBE); per tenth: %v",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), total, float64(total)/1e6, total/uint64(n), groups)
	waitConnected(t, srv, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	srv.Close(ctx)
	cancel()
	start = time.Now()
	_, srv2 := startBroker(t, mod)
	t.Logf("restart: %v", time.Since(start).Round(time.Millisecond))
	if got := stats(srv2).Subscriptions; got != n {
		t.Fatalf("%d subscriptions after a restart, want %d", got, n)
	}
}
