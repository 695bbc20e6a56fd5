package app_test

// Password verifiers through the whole program (docs/security.md, "Password storage and login
// speed"): users whose password was set through Turnstile log in by one HMAC, an imported user
// gets a verifier at the first login that survives a restart, the key file is guarded, and no
// verifier reaches the definitions export, the API or the log.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/crypto/bcrypt"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/keyfile"
	"github.com/turnstilemq/turnstile/internal/logbuf"
)

// runLogged is run with every log record, debug included, written to log.
func runLogged(t *testing.T, cfg *config.Config, log *logbuf.Buffer) (*app.App, func()) {
	t.Helper()
	return runWith(t, cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// mqttLogin connects a paho v5 client as user and returns the CONNACK reason code.
func mqttLogin(t *testing.T, a *app.App, id, user, pw string) byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", a.Addr("tcp").String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: user, UsernameFlag: true, Password: []byte(pw), PasswordFlag: true})
	if ack == nil {
		conn.Close()
		t.Fatalf("connect %s as %s: no CONNACK: %v", id, user, err)
	}
	if ack.ReasonCode == 0 {
		c.Disconnect(&paho.Disconnect{})
	} else {
		conn.Close()
	}
	return ack.ReasonCode
}

// apiDo sends an API request as guest and fails unless the status is want.
func apiDo(t *testing.T, a *app.App, method, path, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
	req.SetBasicAuth("guest", "guest")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b.String(), want)
	}
	return b.String()
}

// verifierForms are the forms in which a verifier's MAC could leak: raw, hex, base64.
func verifierForms(t *testing.T, keyFile string, u auth.User, pw string) []string {
	t.Helper()
	k, _, err := keyfile.LoadOrCreate(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := auth.NewPasswordKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pk.NewVerifier(u, []byte(pw)).MarshalBinary()
	mac := b[1+8+32 : 1+8+32+32]
	return []string{string(mac), hex.EncodeToString(mac), base64.StdEncoding.EncodeToString(mac),
		base64.RawStdEncoding.EncodeToString(mac), base64.RawURLEncoding.EncodeToString(mac)}
}

func TestPasswordVerifiers(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	keyFile := cfg.PasswordKeyFile()
	var log logbuf.Buffer
	a, stop := runLogged(t, cfg, &log)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v, want mode 0600", keyFile, err)
	}
	stats := func() auth.LocalStats { return a.Local().Stats() }

	// The default user's password was set from the configuration: a verifier from the start.
	if rc := mqttLogin(t, a, "g1", "guest", "guest"); rc != 0 {
		t.Fatalf("guest: CONNACK %#x", rc)
	}
	// A user created through the API logs in by its verifier; a wrong password is refused 0x86
	// without a look at the hash.
	apiDo(t, a, "PUT", "/api/users/alice", `{"password": "wonderland", "tags": ""}`, 201)
	apiDo(t, a, "PUT", "/api/permissions/%2F/alice", `{"configure": ".*", "write": ".*", "read": ".*"}`, 201)
	if rc := mqttLogin(t, a, "a1", "alice", "wonderland"); rc != 0 {
		t.Fatalf("alice: CONNACK %#x", rc)
	}
	if rc := mqttLogin(t, a, "a2", "alice", "wonderlanD"); rc != 0x86 {
		t.Fatalf("alice with a wrong password: CONNACK %#x, want 0x86", rc)
	}
	// An unknown user costs one HMAC too, as a known one does.
	if rc := mqttLogin(t, a, "n1", "nobody", "wonderland"); rc != 0x86 {
		t.Fatalf("unknown user: CONNACK %#x, want 0x86", rc)
	}
	// The API's own logins (guest, basic auth) go through the same chain and verifiers.
	if s := stats(); s.HashChecks != 0 || s.VerifierChecks < 4 {
		t.Fatalf("after logins of users whose passwords Turnstile set: %+v, want no hash check", s)
	}

	// A user imported with a hash only logs in by the hash once, and gets a verifier.
	hash, err := bcrypt.GenerateFromPassword([]byte("looking-glass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	apiDo(t, a, "PUT", "/api/users/bob", `{"password_hash": "`+string(hash)+`", "hashing_algorithm": "bcrypt", "tags": ""}`, 201)
	apiDo(t, a, "PUT", "/api/permissions/%2F/bob", `{"configure": ".*", "write": ".*", "read": ".*"}`, 201)
	before := stats()
	if rc := mqttLogin(t, a, "b1", "bob", "looking-glass"); rc != 0 {
		t.Fatalf("bob: CONNACK %#x", rc)
	}
	if s := stats(); s.HashChecks != before.HashChecks+1 || s.VerifiersMade != before.VerifiersMade+1 {
		t.Fatalf("bob's first login: %+v (before %+v), want one hash check and one verifier made", s, before)
	}
	if rc := mqttLogin(t, a, "b2", "bob", "looking-glasS"); rc != 0x86 {
		t.Fatalf("bob with a wrong password: CONNACK %#x, want 0x86", rc)
	}

	// No verifier in the definitions export, the user API or the log.
	defs := apiDo(t, a, "GET", "/api/definitions", "", 200)
	users := apiDo(t, a, "GET", "/api/users", "", 200)
	var forms []string
	for _, c := range []struct{ name, pw string }{{"guest", "guest"}, {"alice", "wonderland"}, {"bob", "looking-glass"}} {
		u, ok := a.Directory().User(c.name)
		if !ok {
			t.Fatalf("no user %s", c.name)
		}
		forms = append(forms, verifierForms(t, keyFile, u, c.pw)...)
	}
	stop()
	for _, f := range forms {
		for where, text := range map[string]string{"GET /api/definitions": defs, "GET /api/users": users, "the log": log.String()} {
			if strings.Contains(text, f) {
				t.Fatalf("%s holds a verifier (%q)", where, f)
			}
		}
	}
	for _, secret := range []string{"wonderland", "looking-glass"} {
		if strings.Contains(log.String(), secret) {
			t.Fatalf("the log holds the password %q", secret)
		}
	}
	if strings.Contains(defs, "verifier") || strings.Contains(users, "verifier") {
		t.Fatalf("a verifier field in the export or the user list:\n%s\n%s", defs, users)
	}

	// After a restart on the same data directory, every login is cold, and every one of these
	// users (bob included) logs in by one HMAC: the verifiers were stored.
	a, stop = runLogged(t, cfg, &log)
	for _, c := range []struct{ name, pw string }{{"bob", "looking-glass"}, {"alice", "wonderland"}, {"guest", "guest"}} {
		if rc := mqttLogin(t, a, "r-"+c.name, c.name, c.pw); rc != 0 {
			t.Fatalf("%s after a restart: CONNACK %#x", c.name, rc)
		}
	}
	if s := a.Local().Stats(); s.HashChecks != 0 || s.VerifierChecks != 3 || s.CacheHits != 0 {
		t.Fatalf("cold logins after a restart: %+v, want 3 verifier checks and no hash check", s)
	}
	stop()

	// A key file that group or others may read is refused at start.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Ephemeral: true}); err == nil ||
		!strings.Contains(err.Error(), "auth_key_file") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v, want a refusal naming auth_key_file", err)
	}

	// A new key makes the stored verifiers useless: each user logs in once more by the hash, and
	// a wrong password is still refused.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	a, _ = runLogged(t, cfg, &log)
	if rc := mqttLogin(t, a, "k1", "alice", "wonderland"); rc != 0 {
		t.Fatalf("alice after a new key: CONNACK %#x", rc)
	}
	if rc := mqttLogin(t, a, "k2", "bob", "wonderland"); rc != 0x86 {
		t.Fatalf("bob with alice's password after a new key: CONNACK %#x, want 0x86", rc)
	}
	if rc := mqttLogin(t, a, "k3", "alice", "wonderland"); rc != 0 {
		t.Fatalf("alice again: CONNACK %#x", rc)
	}
	if s := a.Local().Stats(); s.HashChecks != 2 || s.VerifiersMade != 1 || s.VerifierChecks != 1 {
		t.Fatalf("after a new key: %+v, want alice and bob checked by their hashes, then alice by a new verifier", s)
	}
}
