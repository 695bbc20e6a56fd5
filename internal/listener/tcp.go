package listener

import (
	"fmt"
	"net"
	"net/netip"
)

// TCP listens for plain TCP connections on addr ("host:port"; port 0 picks
// an ephemeral port).
func TCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listener: tcp %s: %w", addr, err)
	}
	return ln, nil
}

// IsLoopback reports whether addr, a connection's RemoteAddr, is local to
// this host: any unix-socket address, or an IP in 127.0.0.0/8 or ::1
// (IPv4-mapped forms included). A nil or unparseable address is not.
//
// For WebSocket connections the address is the TCP peer of the socket, so a
// reverse proxy on the same host makes every client look local; see also
// WebSocketOrigin for browser clients.
func IsLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case nil:
		return false
	case *net.UnixAddr:
		return a != nil
	case *net.TCPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.UDPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.IPAddr:
		return a != nil && a.IP.IsLoopback()
	}
	switch addr.Network() {
	case "unix", "unixgram", "unixpacket":
		return true
	}
	s := addr.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return false
}
