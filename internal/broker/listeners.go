package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/listener"
)

// namedListener is an open listener and the name its connections are logged and authenticated
// under ("tcp", "tls", "ws", "wss", "unix").
type namedListener struct {
	ln   net.Listener
	name string
}

// openListeners opens every listener the configuration asks for, all or none: TCP on [mqtt]
// port, TLS on tls_port and WebSocket over TLS on wss_port when [main] tls_cert is set,
// WebSocket on ws_port, and a unix socket at unix_path. certs is nil without TLS; reloading it
// (on SIGHUP) changes the certificate of every TLS listener.
func openListeners(cfg *config.Config) (lns []namedListener, certs *listener.Certs, err error) {
	defer func() {
		if err != nil {
			for _, l := range lns {
				l.ln.Close()
			}
			lns = nil
		}
	}()
	m, mn := &cfg.MQTT, &cfg.Main
	addr := func(port int) string { return net.JoinHostPort(m.Bind, strconv.Itoa(port)) }
	open := func(name, key string, ln net.Listener, err error) error {
		if err != nil {
			return fmt.Errorf("[mqtt] %s: %w", key, err)
		}
		lns = append(lns, namedListener{ln, name})
		return nil
	}
	if m.Port > 0 {
		ln, err := listener.TCP(addr(m.Port))
		if err := open("tcp", "port", ln, err); err != nil {
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
			return lns, nil, err
		}
		certs = c
		if m.TLSPort > 0 {
			ln, err := listener.TLS(addr(m.TLSPort), tlsCfg)
			if err := open("tls", "tls_port", ln, err); err != nil {
				return lns, nil, err
			}
		}
		if m.WSSPort > 0 {
			ln, err := listener.WebSocket(addr(m.WSSPort), tlsCfg, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize)})
			if err := open("wss", "wss_port", ln, err); err != nil {
				return lns, nil, err
			}
		}
	}
	if m.WSPort > 0 {
		ln, err := listener.WebSocket(addr(m.WSPort), nil, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize)})
		if err := open("ws", "ws_port", ln, err); err != nil {
			return lns, nil, err
		}
	}
	if m.UnixPath != "" {
		ln, err := listener.Unix(m.UnixPath, listener.DefaultUnixMode)
		if err := open("unix", "unix_path", ln, err); err != nil {
			return lns, nil, err
		}
	}
	return lns, certs, nil
}
