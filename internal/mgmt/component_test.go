package mgmt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testComponent runs Component as broker.Run would: disabled on port 0, serving on a real
// port with the Go and process collectors beside the broker's, shut down by its context.
func testComponent(e *env) {
	t := e.t
	cfg := *e.cfg
	cfg.Mgmt.Port = 0
	if err := Component(&cfg, e.log)(t.Context(), e.srv); err != nil {
		t.Fatalf("disabled component: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mgmt.Bind, cfg.Mgmt.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	// The port is taken: the component fails, naming the key.
	if err := Component(&cfg, e.log)(t.Context(), e.srv); err == nil || !strings.Contains(err.Error(), "[mgmt] port") {
		t.Fatalf("component on a taken port: %v", err)
	}
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Component(&cfg, e.log)(ctx, e.srv) }()
	base := "http://127.0.0.1:" + strconv.Itoa(cfg.Mgmt.Port)
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	eventually(t, "the component serving", func() bool { code, _ := get("/api/health"); return code == 200 })
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "turnstile_connections ") {
		t.Fatalf("component /metrics: %d\n%.500s", code, body)
	}
	if code, _ := get("/api/overview"); code != 401 {
		t.Fatalf("component /api/overview without credentials: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("component after cancel: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("component did not return after its context was cancelled")
	}
	if code, _ := get("/api/health"); code != 0 {
		t.Fatal("still serving after shutdown")
	}

	// HTTPS on [mgmt] tls_port with the broker's certificate ([main] tls_cert, tls_key).
	certFile, keyFile, pool := selfSigned(t)
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mgmt.Port, cfg.Mgmt.TLSPort = 0, ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg.Main.TLSCert, cfg.Main.TLSKey = certFile, keyFile
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- Component(&cfg, e.log)(ctx, e.srv) }()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://127.0.0.1:" + strconv.Itoa(cfg.Mgmt.TLSPort) + "/api/health"
	eventually(t, "the component serving HTTPS on tls_port", func() bool {
		res, err := hc.Get(url)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200 && res.TLS != nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("HTTPS component after cancel: %v", err)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key, and returns a pool
// that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
