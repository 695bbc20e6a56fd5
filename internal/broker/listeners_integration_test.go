package broker_test

// Integration tests of the listeners of issue 5 (TLS, WebSocket, unix socket), built with package
// listener and served by a whole broker: every listener gives the same authentication, vhost and
// permission behaviour, the default user logs in from loopback on each of them, and a verified
// client certificate's CN can be the user name (tls_cert_login).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/listener"
)

// ---------------------------------------------------------------------------------------------
// A throwaway PKI

// testPKI is a CA with a server certificate on disk (SANs 127.0.0.1, ::1, localhost) and
// client certificates on demand.
type testPKI struct {
	t                         *testing.T
	caCert                    *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	serial                    int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{t: t, caKey: ecKey(t), pool: x509.NewCertPool(), serial: 1,
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial),
		Subject:               pkix.Name{CommonName: "Turnstile test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.pool.AddCert(p.caCert)
	writePEM(t, p.caFile, "CERTIFICATE", der)
	certDER, key := p.issue("127.0.0.1", true)
	writePEM(t, p.certFile, "CERTIFICATE", certDER)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue signs a leaf certificate for cn: a server certificate (with the SANs) or a client one.
func (p *testPKI) issue(cn string, server bool) ([]byte, *ecdsa.PrivateKey) {
	p.t.Helper()
	p.serial++
	key := ecKey(p.t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatalf("certificate for %s: %v", cn, err)
	}
	return der, key
}

// client returns a client certificate with Common Name cn.
func (p *testPKI) client(cn string) tls.Certificate {
	der, key := p.issue(cn, false)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientConfig trusts the test CA; mod may set versions or a certificate.
func (p *testPKI) clientConfig(mod func(*tls.Config)) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if mod != nil {
		mod(c)
	}
	return c
}

// serverConfig is the broker side: the server certificate, client certificates verified
// against the test CA when given.
func (p *testPKI) serverConfig(minVersion string) *tls.Config {
	p.t.Helper()
	cfg, _, err := listener.TLSConfig(listener.TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, MinVersion: minVersion})
	if err != nil {
		p.t.Fatalf("TLSConfig: %v", err)
	}
	return cfg
}

// ---------------------------------------------------------------------------------------------
// Clients over any net.Conn

// lockedConn makes paho.golang write each packet whole. It writes a packet as net.Buffers, which
// is one writev on a TCP socket but one Write per part on anything else (TLS, WebSocket), and
// its pinger writes PINGREQ from a goroutine of its own, the first one at once after CONNECT:
// unlocked, a PINGREQ could land inside a SUBSCRIBE or a PUBLISH, which the broker then reads as
// a malformed packet or a payload starting with 0xC0 0x00. paho locks a connection that is a
// sync.Locker for the whole of each packet.
type lockedConn struct {
	net.Conn
	sync.Mutex
}

// tryConnectV5Conn is tryConnectV5 over a connection the test dialled (TLS, WebSocket, unix).
func tryConnectV5Conn(t *testing.T, conn net.Conn, cp *paho.Connect) (*v5Client, error) {
	t.Helper()
	conn = &lockedConn{Conn: conn}
	c := &v5Client{t: t, id: cp.ClientID, conn: conn,
		msgs: make(chan *paho.Publish, 1024), discs: make(chan *paho.Disconnect, 4)}
	c.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case c.msgs <- pr.Packet:
				default:
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.discs <- d:
			default:
			}
		},
	})
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := ctxTimeout()
	defer cancel()
	ack, err := c.c.Connect(ctx, cp)
	c.ack = ack
	return c, err
}

func connectV5Conn(t *testing.T, conn net.Conn, cp *paho.Connect) *v5Client {
	t.Helper()
	c, err := tryConnectV5Conn(t, conn, cp)
	if err != nil {
		t.Fatalf("v5 connect %q as %q: %v (connack %+v)", cp.ClientID, cp.Username, err, c.ack)
	}
	return c
}

// v3Over makes the 3.1.1 client use dial instead of TCP to the broker address.
func v3Over(dial func() (net.Conn, error), user, pw string) func(*mqtt.ClientOptions) {
	return func(o *mqtt.ClientOptions) {
		o.SetUsername(user).SetPassword(pw)
		o.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) { return dial() })
	}
}

// roundTrip subscribes c to topic and publishes to it from p, checking delivery.
func roundTrip(t *testing.T, c, p *v5Client, topic, payload string) {
	t.Helper()
	c.mustSub(topic)
	p.mustPub(topic, payload)
	c.expectFrom(topic, payload)
}

// ---------------------------------------------------------------------------------------------
// 12. TLS

func TestTLSListener(t *testing.T) {
	t.Parallel()
	// tls_cert_login is read when the broker is built; it only matters to clients that present
	// a certificate.
	pki := newTestPKI(t)
	addr, srv := startBroker(t, mods(noAnonymous, func(cfg *config.Config) {
		cfg.MQTT.TLSCertLogin = true
		cfg.Main.TLSCACert = pki.caFile // tls_cert_login needs it (the listeners below are the test's)
	}))
	ln, err := listener.TLS("127.0.0.1:0", pki.serverConfig("1.2"))
	if err != nil {
		t.Fatal(err)
	}
	serveExtra(t, srv, ln, "tls")
	tlsAddr := ln.Addr().String()
	ln13, err := listener.TLS("127.0.0.1:0", pki.serverConfig("1.3"))
	if err != nil {
		t.Fatal(err)
	}
	serveExtra(t, srv, ln13, "tls")
	tls13Addr := ln13.Addr().String()
	// Refusals use bob: a wrong guest password would cost a bcrypt check at the default cost.
	addUser(t, srv, "bob", "pw")
	grantAll(t, srv, "bob", "/")

	dialTLS := func(t *testing.T, addr string, mod func(*tls.Config)) (*tls.Conn, error) {
		t.Helper()
		return tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", addr, pki.clientConfig(mod))
	}
	mustDialTLS := func(t *testing.T, addr string, mod func(*tls.Config)) *tls.Conn {
		t.Helper()
		conn, err := dialTLS(t, addr, mod)
		if err != nil {
			t.Fatalf("TLS dial %s: %v", addr, err)
		}
		return conn
	}
	only := func(v uint16) func(*tls.Config) {
		return func(c *tls.Config) { c.MinVersion, c.MaxVersion = v, v }
	}

	// A plain-TCP subscriber sees what TLS clients publish: one broker, whatever the listener.
	watcher := connectV5(t, addr, login("watcher", "guest", "guest"))
	watcher.mustSub("#")

	t.Run("TLS 1.2 and 1.3, guest from loopback", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			conn := mustDialTLS(t, tlsAddr, only(v))
			if got := conn.ConnectionState().Version; got != v {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(v))
			}
			c := connectV5Conn(t, conn, login("tls-"+tls.VersionName(v), "guest", "guest"))
			roundTrip(t, c, c, "tls/"+tls.VersionName(v), "over "+tls.VersionName(v))
			watcher.expectFrom("tls/"+tls.VersionName(v), "over "+tls.VersionName(v))
		}
		// Authentication is the listener-independent one: a wrong password is refused.
		c, err := tryConnectV5Conn(t, mustDialTLS(t, tlsAddr, nil), login("tls-bad", "bob", "nope"))
		if got := connackCode(t, c, err); got != rcBadCredentials {
			t.Fatalf("wrong password over TLS: CONNACK %#x, want 0x86", got)
		}
	})

	t.Run("tls_min_version 1.3", func(t *testing.T) {
		if conn, err := dialTLS(t, tls13Addr, only(tls.VersionTLS12)); err == nil {
			// A TLS 1.3 server refuses in the handshake; make sure nothing was served anyway.
			conn.Close()
			t.Fatalf("a TLS 1.2-only client completed a handshake with a 1.3-only listener")
		}
		conn := mustDialTLS(t, tls13Addr, nil)
		if got := conn.ConnectionState().Version; got != tls.VersionTLS13 {
			t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(got))
		}
		connectV5Conn(t, conn, login("tls13", "guest", "guest"))
	})

	t.Run("mosquitto_pub --cafile", func(t *testing.T) {
		if _, err := exec.LookPath("mosquitto_pub"); err != nil {
			t.Skip("mosquitto_pub not installed (CI installs the mosquitto clients)")
		}
		_, port, _ := net.SplitHostPort(tlsAddr)
		run := func(args ...string) ([]byte, error) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			base := []string{"--cafile", pki.caFile, "-h", "127.0.0.1", "-p", port, "-q", "1"}
			return exec.CommandContext(ctx, "mosquitto_pub", append(base, args...)...).CombinedOutput()
		}
		for _, v := range []string{"mqttv311", "mqttv5"} {
			if out, err := run("-V", v, "-u", "guest", "-P", "guest", "-t", "mosq/"+v, "-m", "x"); err != nil {
				t.Fatalf("mosquitto_pub -V %s: %v\n%s", v, err, out)
			}
			watcher.expectFrom("mosq/"+v, "x")
		}
		if out, err := run("-u", "bob", "-P", "wrong", "-t", "mosq/bad", "-m", "x"); err == nil {
			t.Fatalf("mosquitto_pub with a wrong password succeeded:\n%s", out)
		}
	})

	t.Run("client certificate login", func(t *testing.T) {
		srv.Dir().PutUser(auth.User{Name: "alice"}) // no password: only the certificate logs her in
		grantAll(t, srv, "alice", "/")
		setTopicPerm(t, srv, "alice", "/", "^alice/", ".*")
		cert := pki.client("alice")
		withCert := func(c *tls.Config) { c.Certificates = []tls.Certificate{cert} }
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			conn := mustDialTLS(t, tlsAddr, func(c *tls.Config) { withCert(c); only(v)(c) })
			// No user name, no password: the certificate's CN is the user.
			c := connectV5Conn(t, conn, v5Connect("cert-"+tls.VersionName(v), true, 0))
			// alice's topic permission applies: the identity is hers.
			c.mustPub("alice/x", "by certificate")
			watcher.expectFrom("alice/x", "by certificate")
			if code := c.tryPub("bob/x", 1, false, "not alice's"); code != rcNotAuthorized {
				t.Fatalf("publish outside alice's topic permission: PUBACK %#x, want 0x87", code)
			}
		}
		// Without a certificate there is nobody to be: refused.
		c, err := tryConnectV5Conn(t, mustDialTLS(t, tlsAddr, nil), v5Connect("nocert", true, 0))
		if got := connackCode(t, c, err); got != rcBadCredentials {
			t.Fatalf("no certificate, no user name: CONNACK %#x, want 0x86", got)
		}
		// Nor with alice's name and no certificate, whatever the password.
		c, err = tryConnectV5Conn(t, mustDialTLS(t, tlsAddr, nil), login("nocert2", "alice", "anything"))
		if got := connackCode(t, c, err); got != rcBadCredentials {
			t.Fatalf("alice without a certificate: CONNACK %#x, want 0x86", got)
		}
		// A certificate whose CN is no user logs nobody in.
		conn := mustDialTLS(t, tlsAddr, func(c *tls.Config) { c.Certificates = []tls.Certificate{pki.client("mallory")} })
		c, err = tryConnectV5Conn(t, conn, v5Connect("mallory", true, 0))
		if got := connackCode(t, c, err); got != rcBadCredentials {
			t.Fatalf("certificate of an unknown user: CONNACK %#x, want 0x86", got)
		}
		// Plain TCP has no certificate either.
		expectRefusedV5(t, addr, v5Connect("tcp-anon", true, 0), rcBadCredentials)
	})
}

// ---------------------------------------------------------------------------------------------
// 13. WebSocket

// wsClientConn is a client's WebSocket connection seen as a net.Conn: each Write is one binary
// message, Read returns the bytes of successive binary messages as one stream.
type wsClientConn struct {
	ws  *websocket.Conn
	rmu sync.Mutex
	r   io.Reader // the message being read
	wmu sync.Mutex
}

func (c *wsClientConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, fmt.Errorf("websocket: message type %d, want binary", typ)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsClientConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsClientConn) Close() error                       { return c.ws.Close() }
func (c *wsClientConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsClientConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsClientConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsClientConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
func (c *wsClientConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}

// dialWS opens an MQTT-over-WebSocket connection to url with the mqtt subprotocol.
func dialWS(url string, tlsCfg *tls.Config) (net.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{listener.Subprotocol}, HandshakeTimeout: waitTimeout, TLSClientConfig: tlsCfg}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket dial %s: %w", url, err)
	}
	resp.Body.Close()
	if ws.Subprotocol() != listener.Subprotocol {
		ws.Close()
		return nil, fmt.Errorf("websocket subprotocol %q, want %q [MQTT-6.0.0-4]", ws.Subprotocol(), listener.Subprotocol)
	}
	return &wsClientConn{ws: ws}, nil
}

func mustDialWS(t *testing.T, url string, tlsCfg *tls.Config) net.Conn {
	t.Helper()
	conn, err := dialWS(url, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestWebSocketListener(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, noAnonymous)
	ln, err := listener.WebSocket("127.0.0.1:0", nil, listener.WSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serveExtra(t, srv, ln, "ws")
	wsURL := "ws://" + ln.Addr().String() + listener.DefaultWSPath
	addUser(t, srv, "bob", "pw")
	grantAll(t, srv, "bob", "/")
	setTopicPerm(t, srv, "bob", "/", "^bob/", ".*")

	watcher := connectV5(t, addr, login("watcher", "guest", "guest"))
	watcher.mustSub("#")

	t.Run("ws: round trip, guest from loopback", func(t *testing.T) {
		s := connectV5Conn(t, mustDialWS(t, wsURL, nil), login("ws-sub", "guest", "guest"))
		p := connectV5Conn(t, mustDialWS(t, wsURL, nil), login("ws-pub", "guest", "guest"))
		roundTrip(t, s, p, "ws/v5", "over websocket")
		watcher.expectFrom("ws/v5", "over websocket")
		// A 3.1.1 client over WebSocket too.
		v3 := connectV3(t, addr, "ws-v3", true, v3Over(func() (net.Conn, error) { return dialWS(wsURL, nil) }, "guest", "guest"))
		v3.pub("ws/v3", 1, false, "3.1.1 over websocket")
		watcher.expectFrom("ws/v3", "3.1.1 over websocket")
	})

	t.Run("ws: same authentication and permissions", func(t *testing.T) {
		c, err := tryConnectV5Conn(t, mustDialWS(t, wsURL, nil), login("ws-bad", "bob", "nope"))
		if got := connackCode(t, c, err); got != rcBadCredentials {
			t.Fatalf("wrong password over WebSocket: CONNACK %#x, want 0x86", got)
		}
		b := connectV5Conn(t, mustDialWS(t, wsURL, nil), login("ws-bob", "bob", "pw"))
		if code := b.tryPub("ws/denied", 1, false, "x"); code != rcNotAuthorized {
			t.Fatalf("publish outside bob's topic permission over WebSocket: PUBACK %#x, want 0x87", code)
		}
		b.mustPub("bob/ws", "allowed")
		watcher.expectFrom("bob/ws", "allowed")
	})

	t.Run("wss: guest from loopback", func(t *testing.T) {
		pki := newTestPKI(t)
		wss, err := listener.WebSocket("127.0.0.1:0", pki.serverConfig("1.2"), listener.WSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		serveExtra(t, srv, wss, "wss")
		url := "wss://" + wss.Addr().String() + listener.DefaultWSPath
		c := connectV5Conn(t, mustDialWS(t, url, pki.clientConfig(nil)), login("wss", "guest", "guest"))
		roundTrip(t, c, c, "wss/v5", "over wss")
		watcher.expectFrom("wss/v5", "over wss")
	})
}

// ---------------------------------------------------------------------------------------------
// 14. Unix socket

// socketDir is a directory for a unix socket whose path fits in sun_path (108 bytes).
func socketDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) < 80 {
		return dir
	}
	dir, err := os.MkdirTemp("", "ts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestUnixSocketListener(t *testing.T) {
	t.Parallel()
	addr, srv := startBroker(t, noAnonymous)
	path := filepath.Join(socketDir(t), "mqtt.sock")
	ln, err := listener.Unix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	serveExtra(t, srv, ln, "unix")
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	dialUnix := func() (net.Conn, error) { return net.DialTimeout("unix", path, waitTimeout) }
	mustDialUnix := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := dialUnix()
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		return conn
	}

	watcher := connectV5(t, addr, login("watcher", "guest", "guest"))
	watcher.mustSub("#")

	// A unix socket counts as loopback: the default user logs in.
	s := connectV5Conn(t, mustDialUnix(t), login("unix-sub", "guest", "guest"))
	p := connectV5Conn(t, mustDialUnix(t), login("unix-pub", "guest", "guest"))
	roundTrip(t, s, p, "unix/v5", "over a unix socket")
	watcher.expectFrom("unix/v5", "over a unix socket")

	v3 := connectV3(t, addr, "unix-v3", true, v3Over(dialUnix, "guest", "guest"))
	if code := v3.subscribe("unix/v3", 1); code != 1 {
		t.Fatalf("3.1.1 SUBACK %#x", code)
	}
	p.mustPub("unix/v3", "to 3.1.1")
	v3.expectFrom("unix/v3", "to 3.1.1")
	watcher.expectFrom("unix/v3", "to 3.1.1")

	// Same authentication: a wrong password and an unknown vhost are refused as on TCP.
	addUser(t, srv, "bob", "pw")
	c, err := tryConnectV5Conn(t, mustDialUnix(t), login("unix-bad", "bob", "nope"))
	if got := connackCode(t, c, err); got != rcBadCredentials {
		t.Fatalf("wrong password over the unix socket: CONNACK %#x, want 0x86", got)
	}
	c, err = tryConnectV5Conn(t, mustDialUnix(t), login("unix-novhost", "nosuch:guest", "guest"))
	if got := connackCode(t, c, err); got != rcNotAuthorized {
		t.Fatalf("unknown vhost over the unix socket: CONNACK %#x, want 0x87", got)
	}
}
