package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// iniFile renders sections in a fixed order, so that a case can add keys to a section the base
// configuration already has (a section may appear only once).
func iniFile(sections map[string][]string) string {
	var b strings.Builder
	for _, s := range []string{"main", "mqtt", "mgmt"} {
		if len(sections[s]) == 0 {
			continue
		}
		b.WriteString("[" + s + "]\n")
		for _, l := range sections[s] {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// freePort returns a port that was free a moment ago; the configurations below never bind it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestServeAndValidateConfigAgree feeds every configuration serve rejects before starting to
// both serve and validate-config: both must exit 1 with the same message, and serve must start
// nothing (it would run until the test's deadline and exit 0).
func TestServeAndValidateConfigAgree(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	aFile := filepath.Join(dir, "file")
	os.WriteFile(aFile, []byte("not PEM, not JSON"), 0o600)
	defs := filepath.Join(dir, "defs.json")
	os.WriteFile(defs, []byte(`{"users":[],"vhosts":[{"name":"/"}],"permissions":[{"user":"ghost","vhost":"/","configure":"","write":"","read":""}]}`), 0o600)
	port := freePort(t)

	for _, tt := range []struct {
		name string
		add  map[string][]string
		want string // a substring of the one error line
	}{
		{"tls_cert_login without tls_ca_cert", map[string][]string{"mqtt": {"tls_cert_login = true"}}, "[mqtt] tls_cert_login: needs [main] tls_ca_cert"},
		{"tls_verify_peer without tls_ca_cert", map[string][]string{"mqtt": {"tls_verify_peer = true"}}, "[mqtt] tls_verify_peer: needs [main] tls_ca_cert"},
		{"missing definitions_file", map[string][]string{"main": {"definitions_file = " + missing}}, "[main] definitions_file: open " + missing},
		{"invalid definitions_file", map[string][]string{"main": {"definitions_file = " + defs}}, `[main] definitions_file: ` + defs + `: permissions[0].user: unknown user "ghost"`},
		{"definitions_file not JSON", map[string][]string{"main": {"definitions_file = " + aFile}}, "[main] definitions_file: " + aFile},
		{"missing certificate", map[string][]string{"main": {"tls_cert = " + missing, "tls_key = " + aFile}}, "[main] tls_cert: cannot load the certificate " + missing},
		{"certificate not PEM", map[string][]string{"main": {"tls_cert = " + aFile, "tls_key = " + aFile}}, "[main] tls_cert: cannot load the certificate " + aFile},
		{"certificate without key", map[string][]string{"main": {"tls_cert = " + aFile}}, "[main] tls_cert: set without tls_key"},
		{"missing CA", map[string][]string{"main": {"tls_ca_cert = " + missing}}, "[main] tls_ca_cert: open " + missing},
		{"TLS port without certificate", map[string][]string{"mqtt": {"tls_port = " + port}}, "[mqtt] tls_port: needs [main] tls_cert and tls_key"},
		{"two listeners on one port", map[string][]string{"mqtt": {"port = " + port}, "mgmt": {"port = " + port}},
			"[mgmt] port: 127.0.0.1:" + port + " collides with 127.0.0.1:" + port + " of [mqtt] port"},
		{"WebSocket on the MQTT port", map[string][]string{"mqtt": {"port = " + port, "ws_port = " + port, "ws_bind = 0.0.0.0"}}, "[mqtt] ws_port: 0.0.0.0:" + port + " collides"},
		{"unknown auth backend", map[string][]string{"main": {"auth_backends = local, ldap"}}, `[main] auth_backends: unknown authentication provider "ldap"`},
		{"default_password too long for bcrypt", map[string][]string{"main": {"default_password = " + strings.Repeat("x", 73)}}, "[main] default_password: longer than 72 bytes"},
		{"quoted value", map[string][]string{"main": {`log_level = "debug"`}}, "[main] log_level: the value is wrapped in quotes"},
		{"data_dir is a file", map[string][]string{"main": {"data_dir = " + aFile}}, "[main] data_dir: " + aFile + " exists and is not a directory"},
		{"log_file in a missing directory", map[string][]string{"main": {"log_file = " + filepath.Join(missing, "t.log")}}, "[main] log_file: the directory " + missing + " does not exist"},
		{"unix_path in a missing directory", map[string][]string{"mqtt": {"unix_path = " + filepath.Join(missing, "s")}}, "[mqtt] unix_path: the directory " + missing + " does not exist"},
		{"bad log_level", map[string][]string{"main": {"log_level = loud"}}, `[main] log_level: "loud" is not one of`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A base that starts nothing on its own: every listener off, state under the test.
			sections := map[string][]string{
				"main": {"data_dir = " + filepath.Join(t.TempDir(), "data")},
				"mqtt": {"port = -1"},
				"mgmt": {"port = -1"},
			}
			for s, lines := range tt.add {
				for _, l := range lines {
					key, _, _ := strings.Cut(l, "=")
					// A case's key replaces the base's.
					kept := sections[s][:0]
					for _, b := range sections[s] {
						if bk, _, _ := strings.Cut(b, "="); strings.TrimSpace(bk) != strings.TrimSpace(key) {
							kept = append(kept, b)
						}
					}
					sections[s] = append(kept, l)
				}
			}
			path := writeFile(t, "turnstile.ini", iniFile(sections))

			vCode, vOut, vErr := execute(t, "validate-config", "--config", path)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var sOut, sErr bytes.Buffer
			sCode := run(ctx, []string{"serve", "--config", path}, &sOut, &sErr)
			if ctx.Err() != nil {
				t.Fatalf("serve started and ran until the deadline; stderr:\n%s", sErr.String())
			}

			if vCode != 1 || vOut != "" {
				t.Errorf("validate-config: exit %d, stdout %q, stderr %q", vCode, vOut, vErr)
			}
			if sCode != 1 || sOut.Len() != 0 {
				t.Errorf("serve: exit %d, stdout %q, stderr %q", sCode, sOut.String(), sErr.String())
			}
			if !strings.Contains(vErr, tt.want) || strings.Count(vErr, "\n") != 1 {
				t.Errorf("validate-config stderr:\n%s\nwant one line containing %q", vErr, tt.want)
			}
			if sErr.String() != vErr {
				t.Errorf("serve and validate-config disagree:\nserve:\n%s\nvalidate-config:\n%s", sErr.String(), vErr)
			}
			if !strings.HasPrefix(vErr, path+":") {
				t.Errorf("the error does not name the file: %q", vErr)
			}
		})
	}
}

// TestServeChecksDefaults runs Check on the built-in defaults too: without a home directory there
// is no default data directory, and serve says so instead of starting with state somewhere odd.
func TestServeChecksDefaults(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	code, stdout, stderr := execute(t, "serve")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "[main] data_dir: no default data directory") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
