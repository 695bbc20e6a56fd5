package broker

import (
	"net"
	"testing"
)

// remoteString must show an address exactly as net.Addr.String does: it names the client in
// logs, events, the API's connection names (which the API looks connections up by) and $SYS.
func TestRemoteStringMatchesAddrString(t *testing.T) {
	addrs := []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 54321},
		&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1883}, // 16-byte IPv4-mapped, as from a dual-stack listener
		&net.TCPAddr{IP: net.IPv6loopback, Port: 8883},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 0},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 65535},
		&net.TCPAddr{Port: 1883},                   // no IP
		&net.TCPAddr{IP: net.IP{1, 2, 3}, Port: 1}, // malformed
		&net.UnixAddr{Name: "/run/turnstile.sock", Net: "unix"},
		&net.UnixAddr{Name: "@", Net: "unix"},
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	addrs = append(addrs, p1.RemoteAddr())
	for _, a := range addrs {
		if got, want := remoteString(a), a.String(); got != want {
			t.Errorf("remoteString(%#v) = %q, want %q", a, got, want)
		}
	}
	if got := remoteString(nil); got != "" {
		t.Errorf("remoteString(nil) = %q, want \"\"", got)
	}
}

func TestRemoteStringAllocatesOnce(t *testing.T) {
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321}
	if n := testing.AllocsPerRun(100, func() { _ = remoteString(a) }); n > 1 {
		t.Errorf("remoteString allocates %v times per call, want 1", n)
	}
}
