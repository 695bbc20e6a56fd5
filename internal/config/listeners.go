package config

import (
	"net"
	"strconv"
)

// Listener is one listener the configuration enables: what to open, and the keys to name when it
// cannot be opened ("[mqtt] ws_port: listen tcp 127.0.0.1:8083: address already in use").
type Listener struct {
	// Name is the listener's name in logs and in the auth layer: "tcp", "tls", "ws", "wss" and
	// "unix" for MQTT, "mgmt" and "mgmt-tls" for the management API.
	Name    string
	Section string // "mqtt" or "mgmt"
	Key     string // the key that enables it: "port", "tls_port", "ws_port", "wss_port", "unix_path"
	BindKey string // the key its address comes from: "bind", "tls_bind", ...; "" for unix
	Network string // "tcp" or "unix"
	Addr    string // host:port for tcp, the socket path for unix
	TLS     bool   // served with [main] tls_cert and tls_key
}

// KeyName is "[section] key", as errors and logs name the listener's key.
func (l Listener) KeyName() string { return "[" + l.Section + "] " + l.Key }

// Listeners lists every listener the configuration enables, in the order they should be opened:
// MQTT over TCP, TLS, WebSocket, secure WebSocket and the unix socket, then the management API
// over HTTP and HTTPS. A TCP listener is enabled by a port above 0; the TLS ones also need
// [main] tls_cert. Check has already rejected a TLS port set without a certificate, two
// listeners on one address, and a unix_path that cannot be used.
func (c *Config) Listeners() []Listener {
	m, tlsOn := &c.MQTT, c.Main.TLSCert != ""
	var out []Listener
	add := func(on bool, l Listener) {
		if on {
			out = append(out, l)
		}
	}
	add(m.Port > 0, Listener{Name: "tcp", Section: "mqtt", Key: "port", BindKey: "bind", Network: "tcp", Addr: c.MQTTAddr()})
	add(tlsOn && m.TLSPort > 0, Listener{Name: "tls", Section: "mqtt", Key: "tls_port", BindKey: bindKey(m.TLSBind, "tls_bind"),
		Network: "tcp", Addr: c.TLSAddr(), TLS: true})
	add(m.WSPort > 0, Listener{Name: "ws", Section: "mqtt", Key: "ws_port", BindKey: bindKey(m.WSBind, "ws_bind"),
		Network: "tcp", Addr: c.WSAddr()})
	add(tlsOn && m.WSSPort > 0, Listener{Name: "wss", Section: "mqtt", Key: "wss_port", BindKey: bindKey(m.WSSBind, "wss_bind"),
		Network: "tcp", Addr: c.WSSAddr(), TLS: true})
	add(m.UnixPath != "", Listener{Name: "unix", Section: "mqtt", Key: "unix_path", Network: "unix", Addr: m.UnixPath})
	add(c.Mgmt.Port > 0, Listener{Name: "mgmt", Section: "mgmt", Key: "port", BindKey: "bind", Network: "tcp", Addr: c.MgmtAddr()})
	add(tlsOn && c.Mgmt.TLSPort > 0, Listener{Name: "mgmt-tls", Section: "mgmt", Key: "tls_port", BindKey: "bind",
		Network: "tcp", Addr: c.MgmtTLSAddr(), TLS: true})
	add(c.Tokens.Port > 0, Listener{Name: "tokens", Section: "tokens", Key: "port", BindKey: "bind", Network: "tcp",
		Addr: hostPort(c.Tokens.Bind, c.Tokens.Port)})
	add(tlsOn && c.Tokens.TLSPort > 0, Listener{Name: "tokens-tls", Section: "tokens", Key: "tls_port", BindKey: "bind",
		Network: "tcp", Addr: hostPort(c.Tokens.Bind, c.Tokens.TLSPort), TLS: true})
	return out
}

// bindKey is the key a listener's address comes from: its own bind key when set, else [mqtt] bind.
func bindKey(own, key string) string {
	if own != "" {
		return key
	}
	return "bind"
}

// MQTTAddr is the MQTT TCP listener's address, [mqtt] bind and port. It means something only when
// Port > 0.
func (c *Config) MQTTAddr() string { return hostPort(c.MQTT.Bind, c.MQTT.Port) }

// TLSAddr is the MQTT over TLS listener's address: [mqtt] tls_bind (else bind) and tls_port.
func (c *Config) TLSAddr() string { return hostPort(or(c.MQTT.TLSBind, c.MQTT.Bind), c.MQTT.TLSPort) }

// WSAddr is the MQTT over WebSocket listener's address: [mqtt] ws_bind (else bind) and ws_port.
func (c *Config) WSAddr() string { return hostPort(or(c.MQTT.WSBind, c.MQTT.Bind), c.MQTT.WSPort) }

// WSSAddr is the MQTT over secure WebSocket listener's address: [mqtt] wss_bind (else bind) and
// wss_port.
func (c *Config) WSSAddr() string { return hostPort(or(c.MQTT.WSSBind, c.MQTT.Bind), c.MQTT.WSSPort) }

// MgmtAddr is the management API's HTTP address, [mgmt] bind and port. It means something only
// when Port > 0.
func (c *Config) MgmtAddr() string { return hostPort(c.Mgmt.Bind, c.Mgmt.Port) }

// MgmtTLSAddr is the management API's HTTPS address, [mgmt] bind and tls_port.
func (c *Config) MgmtTLSAddr() string { return hostPort(c.Mgmt.Bind, c.Mgmt.TLSPort) }

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
