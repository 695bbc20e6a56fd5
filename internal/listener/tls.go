package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// TLSOptions is what TLSConfig needs from the configuration. The comments
// name the configuration keys that errors refer to.
type TLSOptions struct {
	CertFile   string // [main] tls_cert: PEM certificate chain, leaf first
	KeyFile    string // [main] tls_key: PEM private key
	CAFile     string // [main] tls_ca_cert: PEM CAs for client certificates; optional
	MinVersion string // [mqtt] tls_min_version: "1.2" (default) or "1.3"
	VerifyPeer bool   // [mqtt] tls_verify_peer: require a client certificate; needs CAFile
}

// Certs holds a reloadable certificate and key pair. Its GetCertificate
// serves the current pair to every handshake, so Reload (on SIGHUP) takes
// effect for new connections without restarting listeners; established
// connections keep the certificate they were made with.
type Certs struct {
	certFile, keyFile string

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[tls.Certificate]
}

// LoadCerts reads the PEM certificate chain and private key.
func LoadCerts(certFile, keyFile string) (*Certs, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("listener: tls_cert and tls_key must both be set")
	}
	c := &Certs{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload re-reads the certificate and key files. On error the pair in use is
// kept and the error is returned, so a half-written or mismatched file never
// takes the listener down.
func (c *Certs) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("listener: tls_cert %s, tls_key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil { // filled in by crypto/tls since Go 1.23
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("listener: tls_cert %s: %w", c.certFile, err)
		}
	}
	c.cur.Store(&pair)
	return nil
}

// GetCertificate returns the current pair; it is the tls.Config
// GetCertificate hook.
func (c *Certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Leaf returns the parsed leaf certificate in use, for logging its subject,
// serial number and expiry after a reload.
func (c *Certs) Leaf() *x509.Certificate {
	return c.cur.Load().Leaf
}

// TLSConfig builds the server configuration shared by the MQTTS and WSS
// listeners: the certificate from a reloadable Certs, TLS 1.2 or 1.3 as the
// minimum, and, when CAFile is set, client certificates verified against it
// (optional, or required when VerifyPeer is true). The CA file is read once;
// changing it needs a restart.
func TLSConfig(o TLSOptions) (*tls.Config, *Certs, error) {
	var minVersion uint16
	switch o.MinVersion {
	case "", "1.2":
		minVersion = tls.VersionTLS12
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return nil, nil, fmt.Errorf("listener: tls_min_version %q: want \"1.2\" or \"1.3\"", o.MinVersion)
	}
	if o.VerifyPeer && o.CAFile == "" {
		// Without our own CA, any certificate from a public CA would pass,
		// and with certificate login its CN would become a username.
		return nil, nil, errors.New("listener: tls_verify_peer needs tls_ca_cert")
	}
	certs, err := LoadCerts(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: certs.GetCertificate,
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("listener: tls_ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("listener: tls_ca_cert %s: no PEM certificate found", o.CAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if o.VerifyPeer {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, certs, nil
}

// TLS listens on addr for TLS connections. Handshakes are not done in Accept:
// crypto/tls runs one on the first Read or Write, bounded by the deadline the
// caller has set (the broker's CONNECT timeout), so a slow client cannot
// stall the accept loop.
func TLS(addr string, cfg *tls.Config) (net.Listener, error) {
	if err := checkServerConfig(cfg); err != nil {
		return nil, err
	}
	ln, err := listenTCP(addr) // no TCP keep-alive, as TCP
	if err != nil {
		return nil, fmt.Errorf("listener: tls %s: %w", addr, err)
	}
	return tls.NewListener(ln, cfg), nil
}

func checkServerConfig(cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("listener: nil tls.Config")
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return errors.New("listener: tls.Config has no certificate")
	}
	return nil
}

// PeerCN returns the Common Name of the client certificate verified against
// tls_ca_cert, or "" when the connection is not TLS, the client sent no
// certificate, or the handshake has not completed yet. It works for MQTTS
// (*tls.Conn) and for WSS connections from this package, and looks through
// wrappers that have a NetConn() net.Conn method.
//
// PeerCN never starts a handshake. On MQTTS the handshake completes during
// the first Read, so call it after reading CONNECT (as the MQTT layer does);
// to learn the CN earlier, call (*tls.Conn).HandshakeContext with a deadline
// first. On WSS the handshake completed before the HTTP upgrade.
func PeerCN(c net.Conn) string {
	st, ok := TLSState(c)
	if !ok || !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	return st.VerifiedChains[0][0].Subject.CommonName
}

// TLSState returns the TLS connection state of c (MQTTS, or WSS from this
// package), for logging the version and cipher suite. ok is false when c is
// not carried over TLS. The state is returned by value: every CONNECT asks
// (PeerCN), and a pointer to a *tls.Conn's state would move it to the heap.
func TLSState(c net.Conn) (st tls.ConnectionState, ok bool) {
	switch v := unwrap(c).(type) {
	case *tls.Conn:
		return v.ConnectionState(), true
	case *wsConn:
		if v.tls != nil {
			return *v.tls, true
		}
	}
	return tls.ConnectionState{}, false
}

// unwrap strips caller wrappers that expose NetConn() until it reaches a
// *tls.Conn, a *wsConn or a conn that wraps nothing.
func unwrap(c net.Conn) net.Conn {
	for range 8 { // a few layers; never loop forever
		switch v := c.(type) {
		case *tls.Conn, *wsConn:
			return c
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return c
		}
	}
	return c
}
