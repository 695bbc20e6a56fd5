package listener

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// TCP listens for plain TCP connections on addr ("host:port"; port 0 picks
// an ephemeral port).
//
// Accepted connections have no TCP keep-alive: MQTT has its own (a client silent for 1.5 times
// its Keep Alive is disconnected, [MQTT-3.1.2-24]), and the broker turns TCP keep-alive on
// for the clients that ask for none (Keep Alive 0). Go would otherwise set it on every accepted
// connection, four system calls each, a few percent of what a login costs.
func TCP(addr string) (net.Listener, error) {
	ln, err := listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("listener: tcp %s: %w", addr, err)
	}
	return ln, nil
}

// listenTCP listens on addr; its connections are accepted without TCP keep-alive (TCP).
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
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
