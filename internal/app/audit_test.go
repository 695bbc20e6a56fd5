package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestAuditLog: with [main] audit_log set, a failed login, a login, an API login and a
// disconnect are written as JSON lines to a file of mode 0600, naming who and why, never the
// password; SIGHUP's reopen moves to a fresh file after logrotate.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg.Main.AuditLog = path
	a, stop := run(t, cfg)
	addr := a.Addr("tcp").String()

	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	bad := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	ack, _ := bad.Connect(ctx, &paho.Connect{ClientID: "intruder", CleanStart: true, Username: "guest", UsernameFlag: true,
		Password: []byte("s3cret-guess"), PasswordFlag: true})
	cancel()
	if ack == nil || ack.ReasonCode != 0x86 {
		t.Fatalf("wrong password: %+v", ack)
	}
	c := connect(t, addr, "audited", "guest", "guest", nil)
	c.Disconnect(&paho.Disconnect{})
	stop() // Close writes what is queued

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "s3cret-guess") || strings.Contains(string(data), `"guest","pass`) {
		t.Fatalf("the audit log holds a password:\n%s", data)
	}
	seen := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		var ln map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, ln["time"].(string)); err != nil {
			t.Fatalf("time %v: %v", ln["time"], err)
		}
		seen[ln["event"].(string)+"/"+str(ln["client_id"])] = ln
	}
	failed := seen["login_failed/intruder"]
	if failed == nil || failed["user"] != "guest" || failed["reason"] != "bad_credentials" || !strings.HasPrefix(str(failed["remote"]), "127.0.0.1") {
		t.Fatalf("login_failed line %v; all: %v", failed, seen)
	}
	if ok := seen["connected/audited"]; ok == nil || ok["user"] != "guest" || ok["method"] != "local" {
		t.Fatalf("connected line %v", ok)
	}
	if seen["disconnected/audited"] == nil {
		t.Fatalf("no disconnected line: %v", seen)
	}
}

func str(v any) string { s, _ := v.(string); return s }
