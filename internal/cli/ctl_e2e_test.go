package cli

// End-to-end test of turnstile ctl: the command line runs as a subprocess (this test binary,
// re-executed with ctlSubprocessEnv set, runs Main instead of the tests) against a whole broker
// whose management API is mgmt.New served by httptest, and MQTT clients log in with what it made.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/app"
	"github.com/turnstilemq/turnstile/internal/broker"
	"github.com/turnstilemq/turnstile/internal/config"
	"github.com/turnstilemq/turnstile/internal/definitions"
)

// ctlSubprocessEnv, set to 1, makes the test binary run the command line with its arguments.
const ctlSubprocessEnv = "TURNSTILE_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(ctlSubprocessEnv) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const e2eWait = 10 * time.Second

// e2eBroker is a whole Turnstile, started through the composition root, with MQTT and the
// management API on ephemeral ports.
type e2eBroker struct {
	mqttAddr string
	apiURL   string
	srv      *broker.Server
}

func startE2EBroker(t *testing.T, mods ...func(*config.Config)) *e2eBroker {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.WSPort = 0
	cfg.MQTT.SysInterval = 0
	cfg.Main.DataDir = t.TempDir()
	for _, m := range mods {
		m(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(cfg, app.Options{Logger: log, Ephemeral: true, Version: Version})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(e2eWait):
			t.Errorf("the broker did not stop")
		}
	})
	return &e2eBroker{mqttAddr: a.Addr("tcp").String(), apiURL: a.URL(), srv: a.Broker()}
}

// ctl runs "turnstile ctl args..." as a subprocess logged in as guest (through the environment).
func (b *e2eBroker) ctl(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runSubprocess(t, stdin, []string{envURI + "=" + b.apiURL, envUser + "=guest", envPassword + "=guest"},
		append([]string{"ctl"}, args...)...)
}

// mustCtl is ctl that fails the test unless the command succeeds with nothing on stderr.
func (b *e2eBroker) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := b.ctl(t, "", args...)
	if code != 0 || stderr != "" {
		t.Fatalf("ctl %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
	}
	return stdout
}

func runSubprocess(t *testing.T, stdin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TURNSTILE_")
	}), append(env, ctlSubprocessEnv+"=1")...)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// mqttLogin connects an MQTT 5.0 client as user (which may carry a "vhost:" prefix).
func mqttLogin(t *testing.T, addr, clientID, user, password string) (*paho.Client, chan *paho.Disconnect, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	discs := make(chan *paho.Disconnect, 1)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnServerDisconnect: func(d *paho.Disconnect) {
		select {
		case discs <- d:
		default:
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	_, err = c.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(password), PasswordFlag: true})
	return c, discs, err
}

func TestCtlEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and runs ctl as a subprocess")
	}
	b := startE2EBroker(t)
	if out := b.mustCtl(t, "wait-ready", "--timeout", "5s"); out != "turnstile is ready\n" {
		t.Errorf("wait-ready: %q", out)
	}

	// Set up a tenant as an operator would.
	if out := b.mustCtl(t, "add_vhost", "tenant1"); out != "added vhost \"tenant1\"\n" {
		t.Errorf("add_vhost: %q", out)
	}
	if out := b.mustCtl(t, "add_user", "alice", "alice-pw", "--tags", "management"); out != "added user \"alice\"\n" {
		t.Errorf("add_user: %q", out)
	}
	b.mustCtl(t, "set_permissions", "-p", "tenant1", "alice", ".*", ".*", ".*")

	out := b.mustCtl(t, "list_users")
	if lines := strings.Split(out, "\n"); !slices.Contains(lines, "alice  [management]") ||
		!slices.Contains(lines, "guest  [administrator]") || !strings.HasPrefix(out, "user   tags\n") {
		t.Errorf("list_users:\n%s", out)
	}
	var users []map[string]any
	if err := json.Unmarshal([]byte(b.mustCtl(t, "list_users", "--json")), &users); err != nil || len(users) != 2 {
		t.Errorf("list_users --json: %v %v", users, err)
	}
	if out := b.mustCtl(t, "list_vhosts"); !strings.Contains(out, "\ntenant1\n") || !strings.Contains(out, "\n/\n") {
		t.Errorf("list_vhosts:\n%s", out)
	}
	if out := b.mustCtl(t, "list_permissions", "-p", "tenant1"); out != "user   configure  write  read\nalice  .*         .*     .*\n" {
		t.Errorf("list_permissions -p tenant1:\n%s", out)
	}

	// The export holds what was made, with alice's password as a hash.
	file := filepath.Join(t.TempDir(), "defs.json")
	b.mustCtl(t, "export_definitions", file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := definitions.Parse(f, 0)
	f.Close()
	if err != nil {
		t.Fatalf("the export does not parse: %v", err)
	}
	var alice *definitions.User
	for i := range defs.Users {
		if defs.Users[i].Name == "alice" {
			alice = &defs.Users[i]
		}
	}
	if alice == nil || alice.PasswordHash == "" || strings.Contains(alice.PasswordHash, "alice-pw") ||
		!slices.Equal(alice.Tags, []string{"management"}) {
		t.Errorf("exported alice: %+v", alice)
	}
	if !slices.Contains(defs.Vhosts, definitions.Vhost{Name: "tenant1"}) ||
		!slices.Contains(defs.Permissions, definitions.Permission{User: "alice", Vhost: "tenant1", Configure: ".*", Write: ".*", Read: ".*"}) {
		t.Errorf("export: vhosts %v, permissions %v", defs.Vhosts, defs.Permissions)
	}

	// alice logs in over MQTT to tenant1, and publishes there.
	c, discs, err := mqttLogin(t, b.mqttAddr, "alice-dev", "tenant1:alice", "alice-pw")
	if err != nil {
		t.Fatalf("MQTT login as tenant1:alice: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if _, err := c.Publish(ctx, &paho.Publish{Topic: "a/b", QoS: 1, Payload: []byte("hi")}); err != nil {
		t.Errorf("publish: %v", err)
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "x", "tenant1:alice", "wrong"); err == nil {
		t.Errorf("a wrong password logged in")
	}

	// It is listed, and close_connection disconnects it with 0x98.
	out = b.mustCtl(t, "list_connections")
	var name string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "alice-dev") {
			name, _, _ = strings.Cut(line, "  ")
		}
	}
	if name == "" || !strings.Contains(out, "tenant1") {
		t.Fatalf("list_connections:\n%s", out)
	}
	if out := b.mustCtl(t, "list_sessions", "-p", "tenant1"); !strings.Contains(out, "alice-dev") {
		t.Errorf("list_sessions -p tenant1:\n%s", out)
	}
	b.mustCtl(t, "close_connection", name, "e2e test")
	select {
	case d := <-discs:
		if d.ReasonCode != 0x98 {
			t.Errorf("DISCONNECT reason %#x, want 0x98", d.ReasonCode)
		}
	case <-time.After(e2eWait):
		t.Errorf("no DISCONNECT after close_connection")
	}

	// set_user_tags keeps the password; change_password replaces it.
	b.mustCtl(t, "set_user_tags", "alice", "monitoring")
	if _, _, err := mqttLogin(t, b.mqttAddr, "alice-2", "tenant1:alice", "alice-pw"); err != nil {
		t.Errorf("login after set_user_tags: %v", err)
	}
	b.mustCtl(t, "change_password", "alice", "new-pw")
	if _, _, err := mqttLogin(t, b.mqttAddr, "alice-3", "tenant1:alice", "alice-pw"); err == nil {
		t.Errorf("the old password still logs in after change_password")
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "alice-4", "tenant1:alice", "new-pw"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if out := b.mustCtl(t, "list_users"); !strings.Contains(out, "alice  [monitoring]") {
		t.Errorf("tags after change_password:\n%s", out)
	}

	// A hash from passwd, imported in a definitions file, logs in.
	code, hash, stderr := runSubprocess(t, "bob-pw\n", nil, "passwd")
	if code != 0 || stderr != "" {
		t.Fatalf("passwd: exit %d, stderr %q", code, stderr)
	}
	doc, _ := json.Marshal(map[string]any{
		"users": []map[string]any{{"name": "bob", "password_hash": strings.TrimSpace(hash),
			"hashing_algorithm": "lavinmq_bcrypt", "tags": ""}},
		"vhosts":      []map[string]any{{"name": "/"}},
		"permissions": []map[string]any{{"user": "bob", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}},
	})
	if code, stdout, stderr := b.ctl(t, string(doc), "import_definitions", "-"); code != 0 || stderr != "" {
		t.Fatalf("import_definitions: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "bob-1", "bob", "bob-pw"); err != nil {
		t.Errorf("login as the imported bob: %v", err)
	}

	// The server's errors reach stderr with a nonzero exit.
	code, stdout, stderr := b.ctl(t, "", "delete_user", "nobody")
	if code == 0 || stdout != "" || !strings.HasPrefix(stderr, "Error: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("delete_user nobody: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runSubprocess(t, "", []string{envURI + "=" + b.apiURL, envUser + "=alice", envPassword + "=new-pw"},
		"ctl", "add_vhost", "mine")
	if code == 0 || !strings.HasPrefix(stderr, "Error: ") {
		t.Errorf("add_vhost as a monitoring user: exit %d, stderr %q", code, stderr)
	}

	// Deleting the user ends their logins.
	b.mustCtl(t, "delete_user", "alice")
	if _, _, err := mqttLogin(t, b.mqttAddr, "alice-5", "tenant1:alice", "new-pw"); err == nil {
		t.Errorf("a deleted user logged in")
	}
}

// TestCtlAccessKeysAndRevocations: AccessKeys and revocations through ctl against a running Turnstile.
func TestCtlAccessKeysAndRevocations(t *testing.T) {
	b := startE2EBroker(t, func(cfg *config.Config) { cfg.Tokens.Port = 1 })
	out := b.mustCtl(t, "add_access_key", "guest", "/")
	if !strings.Contains(out, "access_key_id") || !strings.Contains(out, "access_key_secret") {
		t.Fatalf("add_access_key printed %q", out)
	}
	id := strings.Fields(strings.Split(out, "\n")[0])[1]
	if list := b.mustCtl(t, "list_access_keys"); !strings.Contains(list, id) || strings.Contains(list, "secret") {
		t.Fatalf("list_access_keys: %q", list)
	}
	b.mustCtl(t, "delete_access_key", id)
	if list := b.mustCtl(t, "list_access_keys"); strings.Contains(list, id) {
		t.Fatalf("deleted key still listed: %q", list)
	}
	out = b.mustCtl(t, "revoke_credential", "--kid", "compromised-1")
	if !strings.Contains(out, `revoked kid "compromised-1"`) {
		t.Fatalf("revoke_credential: %q", out)
	}
	list := b.mustCtl(t, "list_revocations")
	if !strings.Contains(list, "compromised-1") {
		t.Fatalf("list_revocations: %q", list)
	}
	rid := strings.TrimSuffix(strings.Fields(out)[len(strings.Fields(out))-1], ")")
	b.mustCtl(t, "delete_revocation", rid)
	if list := b.mustCtl(t, "list_revocations"); strings.Contains(list, "compromised-1") {
		t.Fatalf("lifted revocation still listed: %q", list)
	}
	if code, _, stderr := b.ctl(t, "", "revoke_credential"); code == 0 || !strings.Contains(stderr, "exactly one") {
		t.Fatalf("revoke_credential without a target: %d %q", code, stderr)
	}
}
