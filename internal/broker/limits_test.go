package broker

import (
	"net/netip"
	"testing"
	"time"
)

// The connect-rate bucket of a source: a burst at once, then the rate; IPv6 sources by /64;
// each source its own bucket; the table bounded.
func TestRateTable(t *testing.T) {
	var rt rateTable
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if !rt.allow(a, now, 2, 3) {
			t.Fatalf("burst: CONNECT %d refused", i)
		}
	}
	if rt.allow(a, now, 2, 3) {
		t.Fatal("past the burst: allowed")
	}
	if !rt.allow(netip.MustParseAddr("192.0.2.2"), now, 2, 3) {
		t.Fatal("another source refused")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2 a second
	if !rt.allow(a, now, 2, 3) || rt.allow(a, now, 2, 3) {
		t.Fatal("refill: want exactly one token after 0.5 s")
	}
	now = now.Add(time.Hour) // refills up to the burst, not beyond
	for i := range 3 {
		if !rt.allow(a, now, 2, 3) {
			t.Fatalf("after an hour: CONNECT %d refused", i)
		}
	}
	if rt.allow(a, now, 2, 3) {
		t.Fatal("the bucket holds more than the burst")
	}
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	rt.allow(v6, now, 1, 1)
	if rt.allow(netip.MustParseAddr("2001:db8:1:2:ffff::1"), now, 1, 1) {
		t.Fatal("IPv6 not keyed by /64")
	}
	for range 3 {
		if !rt.allow(netip.Addr{}, now, 1, 1) {
			t.Fatal("no address (a unix socket) is limited")
		}
	}
	for i := range maxRateSources + 10 {
		rt.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now, 1, 1)
	}
	if n := len(rt.m); n != maxRateSources || rt.lru.Len() != n {
		t.Fatalf("%d sources tracked, want %d", n, maxRateSources)
	}
}
