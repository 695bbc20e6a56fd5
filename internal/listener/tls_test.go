package listener

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

type serverResult struct {
	cnBefore string // PeerCN before the first Read
	cn       string // PeerCN after it
	err      error  // from the first Read, which runs the handshake
}

// exchange accepts one connection on ln; a client dials it with ccfg,
// writes a byte and reads "ok". It returns what each side saw.
func exchange(t *testing.T, ln net.Listener, ccfg *tls.Config) (tls.ConnectionState, serverResult, error) {
	t.Helper()
	results := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			results <- serverResult{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := serverResult{cnBefore: PeerCN(c)}
		_, r.err = c.Read(make([]byte, 1))
		r.cn = PeerCN(c)
		if r.err == nil {
			c.Write([]byte("ok"))
		}
		results <- r
	}()

	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), ccfg)
	var st tls.ConnectionState
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		st = c.ConnectionState()
		if _, err = c.Write([]byte("x")); err == nil {
			_, err = io.ReadFull(c, make([]byte, 2))
		}
	}
	return st, <-results, err
}

func newTLSListener(t *testing.T, o TLSOptions) (net.Listener, *Certs) {
	t.Helper()
	cfg, certs, err := TLSConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := TLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, certs
}

func TestTLSVersions(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name       string
		serverMin  string
		clientMax  uint16
		want       uint16 // 0: the handshake must fail
		wantErrSub string
	}{
		{"default min, 1.2 client", "", tls.VersionTLS12, tls.VersionTLS12, ""},
		{"min 1.2, 1.2 client", "1.2", tls.VersionTLS12, tls.VersionTLS12, ""},
		{"min 1.2, 1.3 client", "1.2", tls.VersionTLS13, tls.VersionTLS13, ""},
		{"min 1.3, 1.3 client", "1.3", tls.VersionTLS13, tls.VersionTLS13, ""},
		{"min 1.3 refuses 1.2-max client", "1.3", tls.VersionTLS12, 0, "version"},
		{"min 1.2 refuses 1.1-max client", "1.2", tls.VersionTLS11, 0, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, _ := newTLSListener(t, TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: tt.serverMin})
			ccfg := p.clientConfig()
			ccfg.MinVersion = tls.VersionTLS10
			ccfg.MaxVersion = tt.clientMax
			st, sres, cerr := exchange(t, ln, ccfg)
			if tt.want == 0 {
				if cerr == nil || sres.err == nil {
					t.Fatalf("handshake succeeded: client %v, server %v", cerr, sres.err)
				}
				if !strings.Contains(sres.err.Error(), tt.wantErrSub) {
					t.Errorf("server error %q does not mention %q", sres.err, tt.wantErrSub)
				}
				return
			}
			if cerr != nil || sres.err != nil {
				t.Fatalf("client %v, server %v", cerr, sres.err)
			}
			if st.Version != tt.want {
				t.Errorf("version = %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.want))
			}
			if sres.cn != "" {
				t.Errorf("PeerCN = %q without a client certificate", sres.cn)
			}
		})
	}
}

func TestTLSServesIPAndNameSANs(t *testing.T) {
	p := newPKI(t)
	ln, _ := newTLSListener(t, TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile})
	ccfg := p.clientConfig()
	ccfg.ServerName = "127.0.0.1"
	if _, sres, cerr := exchange(t, ln, ccfg); cerr != nil || sres.err != nil {
		t.Fatalf("client %v, server %v", cerr, sres.err)
	}
}

func TestCertsReload(t *testing.T) {
	p := newPKI(t)
	ln, certs := newTLSListener(t, TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile})
	serial := func() int64 {
		t.Helper()
		st, sres, cerr := exchange(t, ln, p.clientConfig())
		if cerr != nil || sres.err != nil {
			t.Fatalf("client %v, server %v", cerr, sres.err)
		}
		return st.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("first serial = %d, want 100", got)
	}

	p.writeServer(101)
	if got := serial(); got != 100 {
		t.Fatalf("serial before Reload = %d, want 100", got)
	}
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 101 {
		t.Fatalf("serial after Reload = %d, want 101", got)
	}
	if got := certs.Leaf().SerialNumber.Int64(); got != 101 {
		t.Errorf("Leaf serial = %d, want 101", got)
	}

	// A broken certificate file: Reload fails and the old pair stays.
	writeFile(t, p.certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	if err := certs.Reload(); err == nil || !strings.Contains(err.Error(), "tls_cert") {
		t.Fatalf("Reload of a broken file: %v, want an error naming tls_cert", err)
	}
	if got := serial(); got != 101 {
		t.Fatalf("serial after failed Reload = %d, want 101", got)
	}

	// A certificate that does not match the key: same.
	c, _ := p.issue(102, "localhost", true)
	writeFile(t, p.certFile, c)
	if err := certs.Reload(); err == nil {
		t.Fatal("Reload accepted a certificate that does not match the key")
	}
	if got := serial(); got != 101 {
		t.Fatalf("serial after mismatched Reload = %d, want 101", got)
	}
}

func TestClientCertificates(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a CA the server does not trust
	alice := p.client("alice")
	mallory := other.client("alice")

	tests := []struct {
		name       string
		verifyPeer bool
		cert       *tls.Certificate
		wantOK     bool
		wantCN     string
	}{
		{"optional, none", false, nil, true, ""},
		{"optional, alice", false, &alice, true, "alice"},
		{"optional, untrusted CA", false, &mallory, false, ""},
		{"required, none", true, nil, false, ""},
		{"required, alice", true, &alice, true, "alice"},
		{"required, untrusted CA", true, &mallory, false, ""},
	}
	for _, tt := range tests {
		for _, maxV := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tt.name+" "+tls.VersionName(maxV), func(t *testing.T) {
				ln, _ := newTLSListener(t, TLSOptions{
					CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, VerifyPeer: tt.verifyPeer,
				})
				ccfg := p.clientConfig()
				ccfg.MaxVersion = maxV
				if tt.cert != nil {
					ccfg.Certificates = []tls.Certificate{*tt.cert}
				}
				_, sres, cerr := exchange(t, ln, ccfg)
				if !tt.wantOK {
					if sres.err == nil || cerr == nil {
						t.Fatalf("accepted: client %v, server %v", cerr, sres.err)
					}
					if sres.cn != "" {
						t.Errorf("PeerCN = %q on a failed handshake", sres.cn)
					}
					return
				}
				if cerr != nil || sres.err != nil {
					t.Fatalf("client %v, server %v", cerr, sres.err)
				}
				if sres.cnBefore != "" {
					t.Errorf("PeerCN before the handshake = %q, want \"\"", sres.cnBefore)
				}
				if sres.cn != tt.wantCN {
					t.Errorf("PeerCN = %q, want %q", sres.cn, tt.wantCN)
				}
			})
		}
	}
}

// wrapped stands for a conn wrapper (metrics, logging) in the broker.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

func TestPeerCNThroughWrapperAndPlainConns(t *testing.T) {
	p := newPKI(t)
	ln, _ := newTLSListener(t, TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile})
	done := make(chan string, 1)
	allocs := make(chan float64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err != nil {
			done <- "handshake: " + err.Error()
			return
		}
		// Every CONNECT asks (the broker's connMeta): reading the CN allocates nothing.
		allocs <- testing.AllocsPerRun(50, func() { PeerCN(c) })
		done <- PeerCN(wrapped{c})
	}()
	ccfg := p.clientConfig()
	ccfg.Certificates = []tls.Certificate{p.client("alice")}
	c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-done; got != "alice" {
		t.Errorf("PeerCN through a wrapper = %q, want alice", got)
	}
	if n := <-allocs; n != 0 {
		t.Errorf("PeerCN on a TLS connection: %v allocations, want 0", n)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := PeerCN(a); got != "" {
		t.Errorf("PeerCN(plain) = %q", got)
	}
	if _, ok := TLSState(a); ok {
		t.Error("TLSState(plain) ok")
	}
	if n := testing.AllocsPerRun(50, func() { PeerCN(a) }); n != 0 {
		t.Errorf("PeerCN on a plain connection: %v allocations, want 0", n)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	p := newPKI(t)
	notPEM := p.dir + "/not.pem"
	writeFile(t, notPEM, []byte("hello"))
	tests := []struct {
		name string
		o    TLSOptions
		key  string // the config key the error must name
	}{
		{"min version 1.1", TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "1.1"}, "tls_min_version"},
		{"min version junk", TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "TLS1.3"}, "tls_min_version"},
		{"no cert", TLSOptions{KeyFile: p.keyFile}, "tls_cert"},
		{"missing cert file", TLSOptions{CertFile: p.dir + "/nope.pem", KeyFile: p.keyFile}, "tls_cert"},
		{"missing CA file", TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.dir + "/nope.pem"}, "tls_ca_cert"},
		{"CA file without PEM", TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: notPEM}, "tls_ca_cert"},
		{"verify peer without CA", TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, VerifyPeer: true}, "tls_verify_peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := TLSConfig(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("TLSConfig = %v, want an error naming %s", err, tt.key)
			}
		})
	}

	cfg, _, err := TLSConfig(TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile, MinVersion: "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil {
		t.Errorf("config = min %x, auth %v, CAs %v", cfg.MinVersion, cfg.ClientAuth, cfg.ClientCAs != nil)
	}
	if _, err := TLS("127.0.0.1:0", nil); err == nil {
		t.Error("TLS accepted a nil config")
	}
	if _, err := TLS("127.0.0.1:0", &tls.Config{}); err == nil {
		t.Error("TLS accepted a config without a certificate")
	}
}
