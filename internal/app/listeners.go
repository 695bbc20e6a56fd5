package app

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/listener"
)

// mqttListener is an open MQTT listener with what the broker needs to serve it.
type mqttListener struct {
	ln  net.Listener
	key string // the configuration key that asked for it, for messages
	l   broker.Listener
}

// Inspect tells the broker what a listener's connection carries: the verified client
// certificate's CN, and the Origin of a browser's WebSocket.
func Inspect(c net.Conn) broker.ConnMeta {
	return broker.ConnMeta{PeerCN: listener.PeerCN(c), BrowserOrigin: listener.WebSocketOrigin(c)}
}

// listenAddr is host:port for a configured port, or host:0 when ephemeral ports are asked for.
func listenAddr(bind string, port int, ephemeral bool) string {
	if ephemeral {
		port = 0
	}
	return net.JoinHostPort(bind, strconv.Itoa(port))
}

// openMQTT opens every MQTT listener the configuration asks for, all or none: TCP on [mqtt]
// port, TLS on tls_port and WebSocket over TLS on wss_port when [main] tls_cert is set,
// WebSocket on ws_port, and a unix socket at unix_path. certs is nil without TLS; reloading it
// changes the certificate of every TLS listener. A listener that cannot be opened is an error
// naming its key, its address and the cause.
func openMQTT(cfg *config.Config, ephemeral bool) (lns []mqttListener, certs *listener.Certs, err error) {
	defer func() {
		if err != nil {
			for _, l := range lns {
				l.ln.Close()
			}
			lns = nil
		}
	}()
	m, mn := &cfg.MQTT, &cfg.Main
	open := func(name, key, addr string, ln net.Listener, err error) error {
		if err != nil {
			return fmt.Errorf("[mqtt] %s: cannot listen on %s: %w", key, addr, err)
		}
		lns = append(lns, mqttListener{ln: ln, key: key, l: broker.Listener{Name: name, Inspect: Inspect}})
		return nil
	}
	if m.Port > 0 {
		addr := listenAddr(m.Bind, m.Port, ephemeral)
		ln, err := listener.TCP(addr)
		if err := open("tcp", "port", addr, ln, err); err != nil {
			return lns, nil, err
		}
	}
	if m.TLSCertLogin && mn.TLSCACert == "" {
		return lns, nil, errors.New("[mqtt] tls_cert_login: needs [main] tls_ca_cert to verify client certificates")
	}
	if mn.TLSCert != "" {
		tlsCfg, c, err := listener.TLSConfig(listener.TLSOptions{CertFile: mn.TLSCert, KeyFile: mn.TLSKey,
			CAFile: mn.TLSCACert, MinVersion: mn.TLSMinVersion, VerifyPeer: m.TLSVerifyPeer})
		if err != nil {
			return lns, nil, fmt.Errorf("[main] tls_cert: %w", err)
		}
		certs = c
		if m.TLSPort > 0 {
			addr := listenAddr(m.Bind, m.TLSPort, ephemeral)
			ln, err := listener.TLS(addr, tlsCfg)
			if err := open("tls", "tls_port", addr, ln, err); err != nil {
				return lns, nil, err
			}
		}
		if m.WSSPort > 0 {
			addr := listenAddr(m.Bind, m.WSSPort, ephemeral)
			ln, err := listener.WebSocket(addr, tlsCfg, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize)})
			if err := open("wss", "wss_port", addr, ln, err); err != nil {
				return lns, nil, err
			}
		}
	}
	if m.WSPort > 0 {
		addr := listenAddr(m.Bind, m.WSPort, ephemeral)
		ln, err := listener.WebSocket(addr, nil, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize)})
		if err := open("ws", "ws_port", addr, ln, err); err != nil {
			return lns, nil, err
		}
	}
	if m.UnixPath != "" {
		ln, err := listener.Unix(m.UnixPath, listener.DefaultUnixMode)
		if err := open("unix", "unix_path", m.UnixPath, ln, err); err != nil {
			return lns, nil, err
		}
	}
	return lns, certs, nil
}
