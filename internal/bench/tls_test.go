package bench

import (
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"

	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/broker"
)

// startTLSBroker serves a broker behind a TLS listener with a fresh self-signed certificate for
// 127.0.0.1, and returns the port and the certificate's PEM file.
func startTLSBroker(t *testing.T) (int, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "turnstile bench test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t)
	// The run logs in as bench/secret: the user exists with full permissions on vhost /.
	u, err := auth.NewUser("bench", []byte("secret"), auth.Hasher{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Directory().PutUser(u); err != nil {
		t.Fatal(err)
	}
	if err := a.Directory().SetPermission(acl.Permission{User: "bench", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	// An extra TLS listener served by the same broker; it stops when the broker does.
	go a.Broker().Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), broker.Listener{Name: "tls"})
	return ln.Addr().(*net.TCPAddr).Port, caFile
}

func TestTLS(t *testing.T) {
	t.Parallel()
	port, caFile := startTLSBroker(t)
	cfg := testConfig(port, Pairs, 2, 1)
	cfg.Duration = 300 * time.Millisecond
	cfg.TLS, cfg.CAFile = true, caFile
	cfg.Username, cfg.Password = "bench", "secret"
	r := run(t, cfg)
	if r.Sent == 0 || r.Received != r.Sent || r.Acked != r.Sent {
		t.Errorf("over TLS: sent %d, received %d, acked %d", r.Sent, r.Received, r.Acked)
	}

	// Without the CA the handshake fails; --insecure skips verification.
	cfg.CAFile = ""
	if _, err := Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("unverified certificate: %v", err)
	}
	cfg.Insecure = true
	cfg.Scenario, cfg.Clients = Conn, 3
	if r := run(t, cfg); r.Alive != 3 {
		t.Errorf("--insecure: %d of 3 connections alive", r.Alive)
	}
}
