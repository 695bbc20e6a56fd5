package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
)

// testPKI writes a self-signed certificate and its key, and a second key that does not match.
func testPKI(t *testing.T) (cert, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ob, _ := x509.MarshalECPrivateKey(other)
	return write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", kb), write("other.pem", "EC PRIVATE KEY", ob)
}

// checkINI parses src and runs Check; a parse error fails the test.
func checkINI(t *testing.T, src string) error {
	t.Helper()
	c, err := Parse("t.ini", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", src, err)
	}
	return Check(c)
}

func TestCheckAcceptsGoodFiles(t *testing.T) {
	cert, key, _ := testPKI(t)
	dir := t.TempDir()
	defs := filepath.Join(dir, "defs.json")
	os.WriteFile(defs, []byte(`{"users":[{"name":"a","password_hash":"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy","tags":""}],
		"vhosts":[{"name":"/"}],"permissions":[{"user":"a","vhost":"/","configure":".*","write":".*","read":".*"}]}`), 0o600)
	for _, src := range []string{
		"",
		"[main]\ndata_dir =\n", // memory only
		"[main]\ntls_cert = " + cert + "\ntls_key = " + key + "\ntls_ca_cert = " + cert + "\n[mqtt]\ntls_verify_peer = true\ntls_cert_login = true\nws_port = 8083\n",
		"[main]\ndefinitions_file = " + defs + "\nlog_file = " + filepath.Join(dir, "t.log") + "\n[mqtt]\nunix_path = " + filepath.Join(dir, "mqtt.sock") + "\n",
		// Same port, addresses that do not overlap.
		"[mqtt]\nbind = 127.0.0.1\nws_port = 8083\nws_bind = 127.0.0.2\n[mgmt]\nbind = ::1\nport = 1883\n",
		// Ports of disabled listeners may repeat: TLS ports without a certificate are not served.
		"[mqtt]\nport = 15671\n",
	} {
		if err := checkINI(t, src); err != nil {
			t.Errorf("Check rejects\n%s\n%v", src, err)
		}
	}
}

func TestCheckRejections(t *testing.T) {
	cert, key, otherKey := testPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	badDefs := filepath.Join(dir, "bad.json")
	os.WriteFile(badDefs, []byte(`{"users":[{"name":"a","password_hash":"$2a$99$x","tags":""}],"vhosts":[{"name":"/"}],
		"permissions":[{"user":"b","vhost":"/","configure":".*","write":".*","read":".*"}]}`), 0o600)
	badHash := filepath.Join(dir, "hash.json")
	os.WriteFile(badHash, []byte(`{"users":[{"name":"a","password_hash":"$2a$99$x","tags":""}],"vhosts":[{"name":"/"}]}`), 0o600)
	aFile := filepath.Join(dir, "file")
	os.WriteFile(aFile, nil, 0o600)

	for _, tt := range []struct {
		name, src string
		want      []string
	}{
		{"tls_cert_login without a CA", "[mqtt]\ntls_cert_login = true\n",
			[]string{"t.ini:2: [mqtt] tls_cert_login: needs [main] tls_ca_cert to verify client certificates"}},
		{"tls_verify_peer without a CA", "[mqtt]\n\ntls_verify_peer = yes\n",
			[]string{"t.ini:3: [mqtt] tls_verify_peer: needs [main] tls_ca_cert to verify client certificates"}},
		{"certificate without key", "[main]\ntls_cert = " + cert + "\n",
			[]string{"t.ini:2: [main] tls_cert: set without tls_key: a certificate needs its private key"}},
		{"key without certificate", "[main]\ntls_key = " + key + "\n",
			[]string{"t.ini:2: [main] tls_key: set without tls_cert: a private key needs its certificate"}},
		{"missing certificate", "[main]\ntls_cert = " + missing + "\ntls_key = " + key + "\n",
			[]string{"t.ini:2: [main] tls_cert: cannot load the certificate " + missing + " with the key " + key + ": open " + missing + ": no such file or directory"}},
		{"key of another certificate", "[main]\ntls_cert = " + cert + "\ntls_key = " + otherKey + "\n",
			[]string{"t.ini:2: [main] tls_cert: cannot load the certificate " + cert + " with the key " + otherKey + ": tls: private key does not match public key"}},
		{"CA not PEM", "[main]\ntls_ca_cert = " + notPEM + "\n",
			[]string{"t.ini:2: [main] tls_ca_cert: no PEM certificate found in " + notPEM}},
		{"CA missing", "[main]\ntls_ca_cert = " + missing + "\n",
			[]string{"t.ini:2: [main] tls_ca_cert: open " + missing + ": no such file or directory"}},
		{"TLS ports without a certificate", "[mqtt]\ntls_port = 8883\nwss_port = 8084\n[mgmt]\ntls_port = 15671\n", []string{
			"t.ini:2: [mqtt] tls_port: needs [main] tls_cert and tls_key: without a certificate this listener is not served",
			"t.ini:3: [mqtt] wss_port: needs [main] tls_cert and tls_key: without a certificate this listener is not served",
			"t.ini:5: [mgmt] tls_port: needs [main] tls_cert and tls_key: without a certificate this listener is not served"}},
		{"definitions file missing", "[main]\ndefinitions_file = " + missing + "\n",
			[]string{"t.ini:2: [main] definitions_file: open " + missing + ": no such file or directory"}},
		{"definitions file invalid", "[main]\ndefinitions_file = " + badDefs + "\n",
			[]string{"t.ini:2: [main] definitions_file: " + badDefs + `: permissions[0].user: unknown user "b"`}},
		{"definitions file with a bad hash", "[main]\ndefinitions_file = " + badHash + "\n",
			[]string{"t.ini:2: [main] definitions_file: " + badHash + ": users[0] (a): "}},
		{"default password too long", "[main]\ndefault_password = " + strings.Repeat("p", 73) + "\n",
			[]string{"t.ini:2: [main] default_password: longer than 72 bytes, the most a bcrypt hash covers"}},
		{"data_dir a file", "[main]\ndata_dir = " + aFile + "\n",
			[]string{"t.ini:2: [main] data_dir: " + aFile + " exists and is not a directory"}},
		{"log_file in a missing directory", "[main]\nlog_file = " + filepath.Join(missing, "t.log") + "\n",
			[]string{"t.ini:2: [main] log_file: the directory " + missing + " does not exist"}},
		{"log_file a directory", "[main]\nlog_file = " + dir + "\n",
			[]string{"t.ini:2: [main] log_file: " + dir + " is a directory"}},
		{"unix_path in a missing directory", "[mqtt]\nunix_path = " + filepath.Join(missing, "s") + "\n",
			[]string{"t.ini:2: [mqtt] unix_path: the directory " + missing + " does not exist"}},
		{"unix_path a file", "[mqtt]\nunix_path = " + aFile + "\n",
			[]string{"t.ini:2: [mqtt] unix_path: " + aFile + " exists and is not a socket"}},
		{"unix_path too long", "[mqtt]\nunix_path = /" + strings.Repeat("s", 107) + "\n",
			[]string{"t.ini:2: [mqtt] unix_path: 108 bytes long; a unix socket path may have at most 107"}},
		{"two listeners on one port", "[mqtt]\nport = 1883\nws_port = 1883\n",
			[]string{"t.ini:3: [mqtt] ws_port: 127.0.0.1:1883 collides with 127.0.0.1:1883 of [mqtt] port (line 2): every listener needs its own port or address"}},
		{"the management API on the MQTT port", "[mgmt]\nport = 1883\n",
			[]string{"t.ini:2: [mgmt] port: 127.0.0.1:1883 collides with 127.0.0.1:1883 of [mqtt] port: every listener needs its own port or address"}},
		{"a wildcard covers loopback", "[mqtt]\nws_port = 15672\nws_bind = 0.0.0.0\n",
			[]string{"t.ini:2: [mqtt] ws_port: 0.0.0.0:15672 collides with 127.0.0.1:15672 of [mgmt] port: every listener needs its own port or address"}},
		// The key written in the file is blamed, not the default it collides with.
		{"TLS on the TCP port", "[main]\ntls_cert = " + cert + "\ntls_key = " + key + "\n[mqtt]\nport = 8883\ntls_bind = ::\n",
			[]string{"t.ini:5: [mqtt] port: 127.0.0.1:8883 collides with [::]:8883 of [mqtt] tls_port: every listener needs its own port or address"}},
		{"every problem at once", "[mqtt]\ntls_verify_peer = true\nws_port = 1883\n[main]\ndata_dir = " + aFile + "\n[mgmt]\ntls_port = 1\n", []string{
			"t.ini:2: [mqtt] tls_verify_peer: needs [main] tls_ca_cert to verify client certificates",
			"t.ini:3: [mqtt] ws_port: 127.0.0.1:1883 collides with 127.0.0.1:1883 of [mqtt] port: every listener needs its own port or address",
			"t.ini:5: [main] data_dir: " + aFile + " exists and is not a directory",
			"t.ini:7: [mgmt] tls_port: needs [main] tls_cert and tls_key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkINI(t, tt.src)
			if err == nil {
				t.Fatalf("Check accepts\n%s", tt.src)
			}
			got := flatten(err)
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%v\nwant %d:\n%s", err, len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i, e := range got {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n%s\nwant:\n%s", i, e, tt.want[i])
				}
				if _, ok := e.(*Error); !ok {
					t.Errorf("%v is a %T, not a *config.Error", e, e)
				}
			}
		})
	}
}

func TestCheckNeverQuotesThePassword(t *testing.T) {
	pw := "hunter2-" + strings.Repeat("x", 80)
	err := checkINI(t, "[main]\ndefault_password = "+pw+"\n")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
	_, err = Parse("t.ini", []byte("[main]\ndefault_password = \"hunter2\"\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("quoted password: error %v", err)
	}
}

func TestCheckNoDefaultDataDir(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	c := Default()
	if c.Main.DataDir != "" {
		t.Fatalf("DataDir = %q without a home", c.Main.DataDir)
	}
	err := Check(c)
	if err == nil || !strings.HasPrefix(err.Error(), "[main] data_dir: no default data directory") {
		t.Errorf("Check: %v", err)
	}
	// An empty data_dir written in the file is memory-only, on purpose.
	if err := checkINI(t, "[main]\ndata_dir =\n"); err != nil {
		t.Errorf("explicit empty data_dir: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	for _, tt := range []struct{ state, xdg, home, want string }{
		{"/var/lib/turnstile", "/x", "/home/u", "/var/lib/turnstile"},
		{"/var/lib/a:/var/lib/b", "", "", "/var/lib/a"},
		{"", "/data", "/home/u", "/data/turnstile"},
		{"relative", "rel", "/home/u", "/home/u/.local/share/turnstile"},
		{"", "", "", ""},
	} {
		t.Setenv("STATE_DIRECTORY", tt.state)
		t.Setenv("XDG_DATA_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		got, err := DefaultDataDir()
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("%+v: %q, %v", tt, got, err)
		}
	}
}

func TestQuotedValuesRejected(t *testing.T) {
	for _, src := range []string{
		"[main]\ndata_dir = \"/var/lib/x\"\n",
		"[main]\ndata_dir = '/var/lib/x'\n",
		"[mqtt]\nport = \"1883\"\n",
		"[main]\ndata_dir = \"\"\n",
	} {
		_, err := Parse("t.ini", []byte(src))
		want := "t.ini:2: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "wrapped in quotes; values are taken literally, so remove the quotes") {
			t.Errorf("%q: %v", src, err)
		}
	}
	// Quotes inside a value, or on one side only, are part of it.
	c, err := Parse("t.ini", []byte("[main]\ndefault_password = pa\"ss'\ndata_dir = /x/\"y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Main.DefaultPassword != "pa\"ss'" || c.Main.DataDir != "/x/\"y" {
		t.Errorf("values %q %q", c.Main.DefaultPassword, c.Main.DataDir)
	}
}

func TestListeners(t *testing.T) {
	cert, key, _ := testPKI(t)
	c, err := Parse("t.ini", []byte("[main]\ntls_cert = "+cert+"\ntls_key = "+key+
		"\n[mqtt]\nbind = 0.0.0.0\ntls_bind = ::\nws_port = 8083\nwss_bind = 10.0.0.1\nunix_path = /run/t.sock\n[mgmt]\ntls_port = -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range c.Listeners() {
		got = append(got, strings.Join([]string{l.Name, l.KeyName(), l.BindKey, l.Network, l.Addr}, " "))
	}
	want := []string{
		"tcp [mqtt] port bind tcp 0.0.0.0:1883",
		"tls [mqtt] tls_port tls_bind tcp [::]:8883",
		"ws [mqtt] ws_port bind tcp 0.0.0.0:8083",
		"wss [mqtt] wss_port wss_bind tcp 10.0.0.1:8084",
		"unix [mqtt] unix_path  unix /run/t.sock",
		"mgmt [mgmt] port bind tcp 127.0.0.1:15672",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Listeners:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.TLSAddr() != "[::]:8883" || c.WSAddr() != "0.0.0.0:8083" || c.WSSAddr() != "10.0.0.1:8084" || c.MgmtTLSAddr() != "127.0.0.1:-1" {
		t.Errorf("addresses %s %s %s %s", c.TLSAddr(), c.WSAddr(), c.WSSAddr(), c.MgmtTLSAddr())
	}

	// The defaults: MQTT and the management API, nothing else (WebSocket and TLS are opt-in).
	got = nil
	for _, l := range Default().Listeners() {
		got = append(got, l.Name+" "+l.Addr)
	}
	if strings.Join(got, ",") != "tcp 127.0.0.1:1883,mgmt 127.0.0.1:15672" {
		t.Errorf("default listeners %v", got)
	}
}

func TestAddrsOverlap(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:1", "127.0.0.1:1", true},
		{"127.0.0.1:1", "127.0.0.1:2", false},
		{"127.0.0.1:1", "127.0.0.2:1", false},
		{"0.0.0.0:1", "127.0.0.1:1", true},
		{"127.0.0.1:1", "0.0.0.0:1", true},
		{"0.0.0.0:1", "[::1]:1", false},
		{"[::]:1", "127.0.0.1:1", true},
		{"[::1]:1", "[::]:1", true},
		{"[::1]:1", "127.0.0.1:1", false},
		{"localhost:1", "127.0.0.1:1", true},
		{"[::ffff:127.0.0.1]:1", "127.0.0.1:1", true},
		{"[fe80::1%eth0]:1", "[fe80::1%eth1]:1", false},
	} {
		if got := addrsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("addrsOverlap(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}

// TestCheckListenerCollisionIsReal binds the two addresses Check calls colliding, to show the
// rule matches the kernel's.
func TestCheckListenerCollisionIsReal(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if !addrsOverlap("0.0.0.0:"+port, "127.0.0.1:"+port) {
		t.Fatal("not an overlap")
	}
	if l2, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
		l2.Close()
		t.Error("the kernel allowed 127.0.0.1 beside 0.0.0.0 on one port")
	}
}
