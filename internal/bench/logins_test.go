package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/acl"
	"github.com/turnstilemq/turnstile/internal/auth"
)

func TestLoginsAt(t *testing.T) {
	for _, tt := range []struct {
		name       string
		cfg        Config
		i          int
		user, pass string
	}{
		{"one login", Config{Username: "guest", Password: "guest"}, 7, "guest", "guest"},
		{"users, index appended", Config{Users: 3, Username: "u", Password: "p{i}"}, 7, "u1", "p1"},
		{"users, template", Config{Users: 10000, Username: "dev-{i}@fleet", Password: "shared"}, 12345, "dev-2345@fleet", "shared"},
	} {
		l, err := newLogins(&tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if u, p := l.at(tt.i); u != tt.user || p != tt.pass {
			t.Errorf("%s: connection %d logs in as %q/%q, want %q/%q", tt.name, tt.i, u, p, tt.user, tt.pass)
		}
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "creds.tsv")
	os.WriteFile(file, []byte("# comment\nToken|AK|iot\tRW|eyJ.a.b\n\nalice\twonder\tland\r\n"), 0o600)
	l, err := newLogins(&Config{Credentials: file})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]string{{"Token|AK|iot", "RW|eyJ.a.b"}, {"alice", "wonder\tland"}, {"Token|AK|iot", "RW|eyJ.a.b"}} {
		if u, p := l.at(i); u != want[0] || p != want[1] {
			t.Errorf("line for connection %d: %q/%q, want %q", i, u, p, want)
		}
	}
	for content, want := range map[string]string{"no tab here\n": "creds.tsv:1: want user name, a tab, password", "# only\n": "no line"} {
		os.WriteFile(file, []byte(content), 0o600)
		if _, err := newLogins(&Config{Credentials: file}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
	bad := Config{Users: 2, Credentials: file}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "users and credentials") {
		t.Errorf("users with credentials: %v", err)
	}
}

// The conn scenario with --users logs in as distinct users of a real Turnstile, each by its
// password verifier (created through the directory, as the API does).
func TestConnDistinctUsers(t *testing.T) {
	a := startApp(t)
	const users = 4
	for i := range users {
		name := "u" + string(rune('0'+i))
		if _, err := a.Directory().PutUserWithPassword(auth.User{Name: name}, []byte("p"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
		if err := a.Directory().SetPermission(acl.Permission{User: name, Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(a.Addr("tcp").(*net.TCPAddr).Port, Conn, 12, 0)
	cfg.Duration = 100 * time.Millisecond
	cfg.Users, cfg.Username, cfg.Password = users, "u", "p{i}"
	r := run(t, cfg)
	if r.Connects != 12 || r.Alive != 12 {
		t.Fatalf("%d connects, %d alive; want 12", r.Connects, r.Alive)
	}
	// Identical logins in progress at once (the same user, password and address) share one
	// check in the chain (auth/flight.go); every other login is one verifier check.
	if s, shared := a.Local().Stats(), a.Chain().Coalesced(); s.HashChecks != 0 || s.VerifierChecks+shared != 12 || s.VerifierChecks < users {
		t.Fatalf("logins %+v, %d coalesced: want 12 verifier checks or coalesced logins, at least %d checks, and no hash check", s, shared, users)
	}
	// Wrong passwords are refused, and counted as connect failures.
	cfg.Password = "wrong{i}"
	var progress bytes.Buffer
	r, err := Run(context.Background(), cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connects != 0 || r.ConnectFailures != 12 || !strings.Contains(r.FirstError, "CONNACK refused") {
		t.Fatalf("wrong passwords: %d connects, %d failures (%s)", r.Connects, r.ConnectFailures, r.FirstError)
	}
}
