//go:build linux

package broker_test

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/listener"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestTCPKeepAliveOnlyWithoutMQTTKeepAlive: the TCP and TLS listeners accept without TCP
// keep-alive (four system calls per connection saved), and the broker turns it on for a client
// that asks for no keep alive (Keep Alive 0, 3.1.2.10), which nothing else would notice going
// away. A client with a keep alive is watched by the broker itself [MQTT-3.1.2-24].
func TestTCPKeepAliveOnlyWithoutMQTTKeepAlive(t *testing.T) {
	addr, srv := startBroker(t, nil)
	pki := newTestPKI(t)
	ln, err := listener.TLS("127.0.0.1:0", pki.serverConfig("1.3"))
	if err != nil {
		t.Fatal(err)
	}
	serveExtra(t, srv, ln, "tls")
	dials := map[string]func() (net.Conn, error){
		"tcp": func() (net.Conn, error) { return net.DialTimeout("tcp", addr, waitTimeout) },
		"tls": func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", ln.Addr().String(), pki.clientConfig(nil))
		},
	}
	for name, dial := range dials {
		for _, v := range []packet.Version{packet.V311, packet.V5} {
			for _, ka := range []uint16{30, 0} {
				c, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := exchange(c, v, []step{{rawConnect(v, "ka", true, ka, nil), []packet.Type{packet.CONNACK}}}); err != nil {
					t.Fatalf("%s %s keep alive %d: %v", name, v, ka, err)
				}
				on, idle := serverKeepAlive(t, c)
				switch {
				case ka != 0 && on:
					t.Errorf("%s %s keep alive %d: the broker's socket has TCP keep-alive on", name, v, ka)
				case ka == 0 && (!on || idle != 15):
					t.Errorf("%s %s keep alive 0: the broker's socket has TCP keep-alive %v, first probe after %d s; want on, 15 s", name, v, on, idle)
				}
				c.Close()
			}
		}
	}
}

// serverKeepAlive finds the broker's end of the test's connection c among this process's
// sockets (the broker runs in it) and returns its SO_KEEPALIVE and TCP_KEEPIDLE.
func serverKeepAlive(t *testing.T, c net.Conn) (on bool, idle int) {
	t.Helper()
	local, remote := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	deadline := time.Now().Add(waitTimeout)
	for {
		for fd := 3; fd < 1<<14; fd++ {
			peer, err := syscall.Getpeername(fd)
			if err != nil {
				continue
			}
			self, err := syscall.Getsockname(fd)
			if err != nil {
				continue
			}
			p, ok1 := peer.(*syscall.SockaddrInet4)
			s, ok2 := self.(*syscall.SockaddrInet4)
			if !ok1 || !ok2 || p.Port != local.Port || s.Port != remote.Port {
				continue
			}
			ka, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			if err != nil {
				t.Fatal(err)
			}
			idle, err := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
			if err != nil {
				t.Fatal(err)
			}
			return ka != 0, idle
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket of this process is the broker's end of %v", local)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
