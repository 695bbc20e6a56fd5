package broker

import (
	"net"
	"time"
)

// tcpKeepAliveConfig is the TCP keep-alive of a connection without an MQTT keep alive: the
// first probe after 15 s of silence (Go's default for accepted connections), nine probes 15 s
// apart, so a peer that vanished is noticed within about 2.5 minutes.
var tcpKeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9}

// tcpKeepAlive turns TCP keep-alive on for a connection whose client asked for no keep alive
// (Keep Alive 0, 3.1.2.10): without it nothing would notice that its peer went away, and the
// connection and its session would be held forever. The TCP and TLS listeners accept without
// TCP keep-alive (listener.TCP), which saves four system calls per connection for every client
// that has an MQTT keep alive, the broker's own check [MQTT-3.1.2-24]. A connection that is not
// TCP, or wraps it in a way this cannot see through, keeps what its listener gave it.
func tcpKeepAlive(conn net.Conn) {
	for range 4 {
		switch c := conn.(type) {
		case interface {
			SetKeepAliveConfig(net.KeepAliveConfig) error
		}:
			c.SetKeepAliveConfig(tcpKeepAliveConfig)
			return
		case interface{ NetConn() net.Conn }: // *tls.Conn
			conn = c.NetConn()
		default:
			return
		}
	}
}
