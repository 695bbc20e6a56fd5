package cli

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCtlWaitReady(t *testing.T) {
	// 503 twice (listeners still opening), then 200.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/health/ready" || r.Method != http.MethodGet {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		if calls.Add(1) <= 2 {
			http.Error(w, `{"status":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	code, stdout, stderr := ctl(t, "--uri", srv.URL, "wait-ready", "--timeout", "10s")
	checkRun(t, nil, code, stdout, stderr, 0, "turnstile is ready\n", "")
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	// --json prints the API's answer; the rabbitmqctl-style names are aliases.
	code, stdout, stderr = ctl(t, "--uri", srv.URL, "--json", "wait_ready")
	checkRun(t, nil, code, stdout, stderr, 0, "{\n  \"status\": \"ok\"\n}\n", "")
}

func TestCtlWaitReadyTimeout(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	start := time.Now()
	code, stdout, stderr := ctl(t, "--uri", url, "wait-ready", "--timeout", "300ms")
	want := "Error: the broker was not ready within 300ms (--timeout): cannot reach the management API at " +
		strings.TrimPrefix(url, "http://") + ": is `turnstile serve` running? (connection refused)\n"
	checkRun(t, nil, code, stdout, stderr, 1, "", want)
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}

	// Still 503 at the deadline: the last answer is the reason.
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	code, _, stderr = ctl(t, "--uri", busy.URL, "await_startup", "--timeout", "250ms")
	checkRun(t, nil, code, "", stderr, 1, "", "Error: the broker was not ready within 250ms (--timeout): 503 Service Unavailable\n")
}

func TestCtlWaitReadyNotTheAPI(t *testing.T) {
	// A 404 will not become 200 by waiting: fail at once.
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	start := time.Now()
	code, _, stderr := ctl(t, "--uri", srv.URL+"/prefix", "wait-ready", "--timeout", "30s")
	want := "Error: GET " + srv.URL + "/prefix/api/health/ready answered 404 Not Found: is --uri the Turnstile management API?\n"
	if code != 1 || stderr != want || time.Since(start) > 5*time.Second {
		t.Errorf("exit %d after %v, stderr %q, want %q", code, time.Since(start), stderr, want)
	}
}

func TestCtlTLSMismatch(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	host := strings.TrimPrefix(plain.URL, "http://")
	code, _, stderr := ctl(t, "--uri", "https://"+host, "list_users")
	if code != 1 || stderr != "Error: the management API at "+host+" answers plain HTTP: use an http:// URI (https:// is for [mgmt] tls_port)\n" {
		t.Errorf("https to http: exit %d, stderr %q", code, stderr)
	}
	secure := httptest.NewUnstartedServer(http.NotFoundHandler())
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	secure.StartTLS()
	t.Cleanup(secure.Close)
	host = strings.TrimPrefix(secure.URL, "https://")
	code, _, stderr = ctl(t, "--uri", secure.URL, "list_users")
	if code != 1 || !strings.HasPrefix(stderr, "Error: the management API at "+host+" presented a certificate ctl does not trust: ") {
		t.Errorf("untrusted certificate: exit %d, stderr %q", code, stderr)
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	t.Setenv(envURI, "http://127.0.0.1:1") // never reached
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serv"}, `turnstile: unknown command "serv" for "turnstile"; did you mean "serve"? ('turnstile --help' lists the commands)` + "\n"},
		{[]string{"validate"}, `turnstile: unknown command "validate" for "turnstile"; did you mean "validate-config"? ('turnstile --help' lists the commands)` + "\n"},
		{[]string{"ctl", "list-users"}, `turnstile: unknown command "list-users" for "turnstile ctl"; did you mean "list_users"? ('turnstile ctl --help' lists the commands)` + "\n"},
		{[]string{"ctl", "waitready"}, `turnstile: unknown command "waitready" for "turnstile ctl"; did you mean "wait-ready"? ('turnstile ctl --help' lists the commands)` + "\n"},
		{[]string{"ctl", "list_vhost"}, `turnstile: unknown command "list_vhost" for "turnstile ctl"; did you mean one of list_vhosts, list_vhost_limits? ('turnstile ctl --help' lists the commands)` + "\n"},
		{[]string{"ctl", "list_"}, `turnstile: unknown command "list_" for "turnstile ctl"; did you mean one of list_users, list_vhosts, list_permissions,` +
			` list_topic_permissions, list_connections, list_sessions, list_revocations, list_access_keys, list_vhost_limits, list_user_limits, list_bans? ('turnstile ctl --help' lists the commands)` + "\n"},
		{[]string{"frobnicate"}, `turnstile: unknown command "frobnicate" for "turnstile" ('turnstile --help' lists the commands)` + "\n"},
	} {
		code, stdout, stderr := execute(t, tt.args...)
		checkRun(t, tt.args, code, stdout, stderr, 1, "", tt.want)
	}
}
