package auth

import (
	"context"
	"net/netip"
	"strings"
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

// TestDefaultUserFromBrowserReason: a browser's WebSocket (Origin header) logging in as the
// default user from 127.0.0.1 is refused, and the reason says it is the browser, not the address
// (the log line shows remote=127.0.0.1 beside it). Every provider that applies the loopback rule
// says so, through the chain too.
func TestDefaultUserFromBrowserReason(t *testing.T) {
	users := NewUsers()
	u, err := NewUser("guest", []byte("guest"), Hasher{BcryptCost: 4}, TagAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	users.Put(u)
	local, err := NewLocal(users, LocalOptions{DefaultUserOnlyLoopback: "guest", Hasher: Hasher{BcryptCost: 4}})
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	ctx := context.Background()
	for name, tt := range map[string]struct {
		p Provider
		c Credentials
	}{
		"local":     {local, Credentials{Username: "guest", Password: []byte("guest"), Remote: lo, Listener: "ws", FromBrowser: true}},
		"cert":      {&Cert{Users: users, DefaultUserOnlyLoopback: "guest"}, Credentials{PeerCN: "guest", Remote: lo, Listener: "wss", FromBrowser: true}},
		"anonymous": {&Anonymous{User: "guest", Users: users, DefaultUserOnlyLoopback: "guest"}, Credentials{Remote: lo, Listener: "ws", FromBrowser: true}},
	} {
		d, _, err := tt.p.Authenticate(ctx, &tt.c)
		if d != Deny {
			t.Fatalf("%s: %v", name, d)
		}
		wantDenial(t, err, ErrNotAuthorized, "browser Origin header")
		wantDenial(t, err, ErrNotAuthorized, "DNS rebinding")
		if strings.Contains(err.Error(), "only from a loopback address") {
			t.Errorf("%s: %v names the address, not the browser", name, err)
		}
	}
	_, err = NewChain(local).WithRateLimiter(nil).Authenticate(ctx,
		&Credentials{Username: "guest", Password: []byte("guest"), Remote: lo, Listener: "ws", FromBrowser: true})
	wantDenial(t, err, ErrNotAuthorized, "browser Origin header")

	// Not a browser, not loopback: the address is the reason.
	_, _, err = local.Authenticate(ctx, &Credentials{Username: "guest", Password: []byte("guest"), Remote: netip.MustParseAddr("10.0.0.1"), Listener: "ws"})
	wantDenial(t, err, ErrNotAuthorized, "only from a loopback address")
}
