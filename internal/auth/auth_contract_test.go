package auth

import (
	"net/netip"
	"testing"
)

func TestLoopbackRefusesBrowsers(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		creds Credentials
		want  bool
	}{
		{Credentials{Remote: lo, Listener: "tcp"}, true},
		{Credentials{Remote: lo, Listener: "ws"}, true},
		{Credentials{Remote: netip.MustParseAddr("::1"), Listener: "wss"}, true},
		{Credentials{Listener: "unix"}, true},
		{Credentials{Remote: netip.MustParseAddr("10.0.0.1"), Listener: "tcp"}, false},
		// A web page on a rebound DNS name reaches the loopback listener from 127.0.0.1.
		{Credentials{Remote: lo, Listener: "ws", FromBrowser: true}, false},
	} {
		if got := c.creds.Loopback(); got != c.want {
			t.Errorf("%+v: Loopback() = %v, want %v", c.creds, got, c.want)
		}
	}
}
