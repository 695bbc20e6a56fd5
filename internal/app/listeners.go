package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/listener"
)

// openListener is an open listener with its configuration entry and, for MQTT, what the broker
// needs to serve it.
type openListener struct {
	conf config.Listener
	ln   net.Listener
	l    broker.Listener
}

// Inspect tells the broker what a listener's connection carries: the verified client
// certificate's CN, and the Origin of a browser's WebSocket.
func Inspect(c net.Conn) broker.ConnMeta {
	return broker.ConnMeta{PeerCN: listener.PeerCN(c), BrowserOrigin: listener.WebSocketOrigin(c)}
}

// ephemeralAddr is addr with port 0, for Options.Ephemeral.
func ephemeralAddr(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, "0")
}

// listeners are every configured listener, opened all or none, and the certificate loaders
// that SIGHUP reloads.
type listeners struct {
	mqtt, mgmt, tokens []openListener
	certs              []*listener.Certs
}

func (ls *listeners) close() {
	for _, l := range ls.mqtt {
		l.ln.Close()
	}
	for _, l := range ls.mgmt {
		l.ln.Close()
	}
	for _, l := range ls.tokens {
		l.ln.Close()
	}
}

// openListeners opens every listener the configuration enables (config.Listeners), all or
// none: a listener that cannot be opened is an error naming its key, its address and the cause,
// and the ones opened before it are closed again. The MQTT TLS listeners verify client
// certificates with [main] tls_ca_cert; the management API's HTTPS does not ask for one.
func openListeners(cfg *config.Config, ephemeral bool, log *slog.Logger) (ls *listeners, err error) {
	ls = &listeners{}
	defer func() {
		if err != nil {
			ls.close()
		}
	}()
	m, mn := &cfg.MQTT, &cfg.Main
	if m.TLSCertLogin && mn.TLSCACert == "" {
		return ls, errors.New("[mqtt] tls_cert_login: needs [main] tls_ca_cert to verify client certificates")
	}
	var mqttTLS, mgmtTLS *tls.Config
	for _, c := range cfg.Listeners() {
		addr := c.Addr
		if ephemeral && c.Network == "tcp" {
			addr = ephemeralAddr(addr)
		}
		var ln net.Listener
		var err error
		switch c.Name {
		case "tcp":
			ln, err = listener.TCP(addr)
		case "tls", "wss":
			if mqttTLS == nil {
				if mqttTLS, err = newTLS(ls, listener.TLSOptions{CertFile: mn.TLSCert, KeyFile: mn.TLSKey,
					CAFile: mn.TLSCACert, MinVersion: mn.TLSMinVersion, VerifyPeer: m.TLSVerifyPeer}); err != nil {
					return ls, fmt.Errorf("[main] tls_cert: %w", err)
				}
			}
			if c.Name == "tls" {
				ln, err = listener.TLS(addr, mqttTLS)
			} else {
				ln, err = listener.WebSocket(addr, mqttTLS, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize), Logger: log})
			}
		case "ws":
			ln, err = listener.WebSocket(addr, nil, listener.WSOptions{MaxMessageSize: int64(m.MaxPacketSize), Logger: log})
		case "unix":
			ln, err = listener.Unix(addr, listener.DefaultUnixMode)
		case "mgmt", "tokens":
			ln, err = net.Listen("tcp", addr)
		case "mgmt-tls", "tokens-tls":
			if mgmtTLS == nil {
				if mgmtTLS, err = newTLS(ls, listener.TLSOptions{CertFile: mn.TLSCert, KeyFile: mn.TLSKey,
					MinVersion: mn.TLSMinVersion}); err != nil {
					return ls, fmt.Errorf("[main] tls_cert: %w", err)
				}
				mgmtTLS.NextProtos = []string{"http/1.1"}
			}
			ln, err = listener.TLS(addr, mgmtTLS)
		default:
			return ls, fmt.Errorf("%s: unknown listener %q", c.KeyName(), c.Name)
		}
		if err != nil {
			return ls, fmt.Errorf("%s: cannot listen on %s: %w", c.KeyName(), addr, err)
		}
		ol := openListener{conf: c, ln: ln}
		switch c.Section {
		case "mgmt":
			ls.mgmt = append(ls.mgmt, ol)
			continue
		case "tokens":
			ls.tokens = append(ls.tokens, ol)
			continue
		}
		ol.l = broker.Listener{Name: c.Name, Inspect: Inspect,
			SubscribedNotices: slices.Contains(config.List(cfg.Tokens.SubscribedNotices), c.Name)}
		ls.mqtt = append(ls.mqtt, ol)
	}
	return ls, nil
}

// newTLS builds a TLS configuration whose certificate SIGHUP reloads (its loader is kept in ls).
func newTLS(ls *listeners, o listener.TLSOptions) (*tls.Config, error) {
	cfg, certs, err := listener.TLSConfig(o)
	if err != nil {
		return nil, err
	}
	ls.certs = append(ls.certs, certs)
	return cfg, nil
}
