package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchange is one request the fake management API expects, in order, and its answer.
type exchange struct {
	method, uri string // uri as sent on the request line: path (escaped) and query
	body        string // the JSON body expected; "" for none
	header      http.Header
	status      int    // 0: 200 with resp, or 204 when resp is ""
	resp        string // JSON answered
}

// fakeAPI is an httptest.Server that checks every request against the next exchange, and the
// basic authentication of each against user and password.
type fakeAPI struct {
	t              *testing.T
	srv            *httptest.Server
	user, password string

	mu   sync.Mutex
	want []exchange
	got  int
}

func newFakeAPI(t *testing.T, want ...exchange) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, user: "admin", password: "pw:secret", want: want}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.got != len(f.want) {
			t.Errorf("the API got %d requests, want %d", f.got, len(f.want))
		}
	})
	// The credentials come from the environment unless a test sets flags.
	t.Setenv(envURI, f.srv.URL)
	t.Setenv(envUser, f.user)
	t.Setenv(envPassword, f.password)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	f.mu.Lock()
	i := f.got
	f.got++
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if i >= len(f.want) {
		t.Errorf("unexpected request %s %s %s", r.Method, r.RequestURI, body)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	x := f.want[i]
	if r.Method != x.method || r.RequestURI != x.uri {
		t.Errorf("request %d: %s %s, want %s %s", i, r.Method, r.RequestURI, x.method, x.uri)
	}
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.password {
		t.Errorf("request %d: basic auth %q %q %v, want %q %q", i, u, p, ok, f.user, f.password)
	}
	if x.body == "" {
		if len(body) != 0 {
			t.Errorf("request %d: body %s, want none", i, body)
		}
	} else {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("request %d: body %q: %v", i, body, err)
		}
		if err := json.Unmarshal([]byte(x.body), &want); err != nil {
			t.Fatalf("bad test body %q: %v", x.body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %d: body %s, want %s", i, body, x.body)
		}
	}
	for k, v := range x.header {
		if got := r.Header.Values(k); !reflect.DeepEqual(got, v) {
			t.Errorf("request %d: header %s = %q, want %q", i, k, got, v)
		}
	}
	status := x.status
	if status == 0 {
		status = http.StatusOK
		if x.resp == "" {
			status = http.StatusNoContent
		}
	}
	if x.resp != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, x.resp)
}

// ctl runs "turnstile ctl args..." in-process.
func ctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return execute(t, append([]string{"ctl"}, args...)...)
}

func checkRun(t *testing.T, args []string, code int, stdout, stderr string, wantCode int, wantOut, wantErr string) {
	t.Helper()
	if code != wantCode || stdout != wantOut || stderr != wantErr {
		t.Errorf("ctl %q: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr:\n%s",
			args, code, stdout, stderr, wantCode, wantOut, wantErr)
	}
}

const userAlice = `{"name":"alice","password_hash":"$2a$10$abcdefghijklmnopqrstuu5Jxv0Q1nq1mC1ODK3Jg8dWmXyS6/xlS",` +
	`"hashing_algorithm":"lavinmq_bcrypt","tags":["management","monitoring"]}`

func TestCtlCommands(t *testing.T) {
	notFound := `{"error":"Object Not Found","reason":"Not Found"}`
	tests := []struct {
		name    string
		args    []string
		api     []exchange
		wantOut string
	}{
		{"add_user", []string{"add_user", "alice", "s3cret", "--tags", "management,monitoring"}, []exchange{
			{method: "GET", uri: "/api/users/alice", status: 404, resp: notFound},
			{method: "PUT", uri: "/api/users/alice", body: `{"password":"s3cret","tags":"management,monitoring"}`, status: 201},
		}, "added user \"alice\"\n"},
		{"add_user no tags, escaped name", []string{"add_user", "tenant/bob", "pw"}, []exchange{
			{method: "GET", uri: "/api/users/tenant%2Fbob", status: 404, resp: notFound},
			{method: "PUT", uri: "/api/users/tenant%2Fbob", body: `{"password":"pw","tags":""}`, status: 201},
		}, "added user \"tenant/bob\"\n"},
		{"delete_user", []string{"delete_user", "alice"}, []exchange{
			{method: "DELETE", uri: "/api/users/alice"},
		}, "deleted user \"alice\"\n"},
		{"change_password keeps tags", []string{"change_password", "alice", "n3w"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: userAlice},
			{method: "PUT", uri: "/api/users/alice", body: `{"password":"n3w","tags":"management,monitoring"}`},
		}, "changed the password of user \"alice\"\n"},
		{"change_password string tags", []string{"change_password", "alice", "n3w"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: `{"name":"alice","password_hash":"x","tags":"administrator"}`},
			{method: "PUT", uri: "/api/users/alice", body: `{"password":"n3w","tags":"administrator"}`},
		}, "changed the password of user \"alice\"\n"},
		{"set_user_tags keeps the password", []string{"set_user_tags", "alice", "administrator", "monitoring"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: userAlice},
			{method: "PUT", uri: "/api/users/alice", body: `{"password_hash":"$2a$10$abcdefghijklmnopqrstuu5Jxv0Q1nq1mC1ODK3Jg8dWmXyS6/xlS",` +
				`"hashing_algorithm":"lavinmq_bcrypt","tags":"administrator,monitoring"}`},
		}, "set the tags of user \"alice\" to [administrator, monitoring]\n"},
		{"set_user_tags none", []string{"set_user_tags", "alice"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: `{"name":"alice","password_hash":"","hashing_algorithm":"lavinmq_bcrypt","tags":[]}`},
			{method: "PUT", uri: "/api/users/alice", body: `{"password_hash":"","hashing_algorithm":"lavinmq_bcrypt","tags":""}`},
		}, "set the tags of user \"alice\" to []\n"},
		{"list_users", []string{"list_users"}, []exchange{
			{method: "GET", uri: "/api/users", resp: `[` + userAlice + `,` +
				`{"name":"guest","password_hash":"h","hashing_algorithm":"rabbit_password_hashing_sha256","tags":"administrator"},` +
				`{"name":"nobody","tags":""}]`},
		}, "user    tags\n" +
			"alice   [management, monitoring]\n" +
			"guest   [administrator]\n" +
			"nobody  []\n"},
		{"add_vhost", []string{"add_vhost", "/"}, []exchange{
			{method: "PUT", uri: "/api/vhosts/%2F", body: `{}`, status: 201},
		}, "added vhost \"/\"\n"},
		{"add_vhost escaped", []string{"add_vhost", "a b/c?d#e%f"}, []exchange{
			{method: "PUT", uri: "/api/vhosts/a%20b%2Fc%3Fd%23e%25f", body: `{}`, status: 201},
		}, "added vhost \"a b/c?d#e%f\"\n"},
		{"delete_vhost", []string{"delete_vhost", "tenant1"}, []exchange{
			{method: "DELETE", uri: "/api/vhosts/tenant1"},
		}, "deleted vhost \"tenant1\"\n"},
		{"list_vhosts", []string{"list_vhosts"}, []exchange{
			{method: "GET", uri: "/api/vhosts", resp: `[{"name":"/"},{"name":"tenant1","messages":3}]`},
		}, "name\n/\ntenant1\n"},
		{"set_permissions default vhost", []string{"set_permissions", "alice", ".*", "^alice/", ""}, []exchange{
			{method: "PUT", uri: "/api/permissions/%2F/alice", body: `{"configure":".*","write":"^alice/","read":""}`, status: 201},
		}, "set the permissions of user \"alice\" on vhost \"/\"\n"},
		{"set_permissions -p", []string{"set_permissions", "-p", "t/1", "alice", ".*", ".*", ".*"}, []exchange{
			{method: "PUT", uri: "/api/permissions/t%2F1/alice", body: `{"configure":".*","write":".*","read":".*"}`, status: 201},
		}, "set the permissions of user \"alice\" on vhost \"t/1\"\n"},
		{"clear_permissions", []string{"clear_permissions", "--vhost", "tenant1", "alice"}, []exchange{
			{method: "DELETE", uri: "/api/permissions/tenant1/alice"},
		}, "cleared the permissions of user \"alice\" on vhost \"tenant1\"\n"},
		{"list_permissions filters by vhost", []string{"list_permissions"}, []exchange{
			{method: "GET", uri: "/api/permissions", resp: `[` +
				`{"user":"alice","vhost":"/","configure":".*","write":"^a/","read":".*"},` +
				`{"user":"bob","vhost":"tenant1","configure":"","write":".*","read":".*"},` +
				`{"user":"guest","vhost":"/","configure":".*","write":".*","read":".*"}]`},
		}, "user   configure  write  read\n" +
			"alice  .*         ^a/    .*\n" +
			"guest  .*         .*     .*\n"},
		{"list_permissions -p", []string{"list_permissions", "-p", "tenant1"}, []exchange{
			{method: "GET", uri: "/api/permissions", resp: `[{"user":"alice","vhost":"/","configure":".*","write":".*","read":".*"},` +
				`{"user":"bob","vhost":"tenant1","configure":"","write":".*","read":".*"}]`},
		}, "user  configure  write  read\n" +
			"bob              .*     .*\n"},
		{"set_topic_permissions", []string{"set_topic_permissions", "-p", "/", "alice", "mqtt.default", "^devices/{client_id}/", ".*"}, []exchange{
			{method: "PUT", uri: "/api/topic-permissions/%2F/alice", body: `{"exchange":"mqtt.default","write":"^devices/{client_id}/","read":".*"}`, status: 201},
		}, "set the topic permissions of user \"alice\" on exchange \"mqtt.default\" of vhost \"/\"\n"},
		{"clear_topic_permissions", []string{"clear_topic_permissions", "alice"}, []exchange{
			{method: "DELETE", uri: "/api/topic-permissions/%2F/alice"},
		}, "cleared the topic permissions of user \"alice\" on vhost \"/\"\n"},
		{"clear_topic_permissions one exchange of two", []string{"clear_topic_permissions", "-p", "t1", "alice", "amq.topic"}, []exchange{
			{method: "GET", uri: "/api/topic-permissions/t1/alice", resp: `[` +
				`{"user":"alice","vhost":"t1","exchange":"amq.topic","write":"a","read":"b"},` +
				`{"user":"alice","vhost":"t1","exchange":"mqtt.default","write":"^x/","read":".*"}]`},
			{method: "DELETE", uri: "/api/topic-permissions/t1/alice"},
			{method: "PUT", uri: "/api/topic-permissions/t1/alice", body: `{"exchange":"mqtt.default","write":"^x/","read":".*"}`, status: 201},
		}, "cleared the topic permissions of user \"alice\" on exchange \"amq.topic\" of vhost \"t1\"\n"},
		{"clear_topic_permissions the only exchange", []string{"clear_topic_permissions", "alice", "mqtt.default"}, []exchange{
			{method: "GET", uri: "/api/topic-permissions/%2F/alice", resp: `[{"user":"alice","vhost":"/","exchange":"mqtt.default","write":"a","read":"b"}]`},
			{method: "DELETE", uri: "/api/topic-permissions/%2F/alice"},
		}, "cleared the topic permissions of user \"alice\" on exchange \"mqtt.default\" of vhost \"/\"\n"},
		{"list_topic_permissions", []string{"list_topic_permissions", "-p", "t1"}, []exchange{
			{method: "GET", uri: "/api/topic-permissions", resp: `[` +
				`{"user":"alice","vhost":"t1","exchange":"mqtt.default","write":"^x/","read":".*"},` +
				`{"user":"bob","vhost":"/","exchange":"mqtt.default","write":"","read":""}]`},
		}, "user   exchange      write  read\n" +
			"alice  mqtt.default  ^x/    .*\n"},
		{"list_connections", []string{"list_connections"}, []exchange{
			{method: "GET", uri: "/api/connections", resp: `[` +
				`{"name":"127.0.0.1:50000 -> 127.0.0.1:1883","vhost":"/","user":"alice","client_id":"dev\t1\u001b[31m",` +
				`"protocol":"MQTT 5.0","ssl":false,"connected_at":1767225600000,"recv_oct":12},` +
				`{"name":"10.0.0.2:6000 -> 10.0.0.1:8883","vhost":"t1","user":"bob","client_properties":{"client_id":"sensor"},` +
				`"protocol":"MQTT 3.1.1","ssl":true,"connected_at":"2026-01-01T00:00:00Z"}]`},
		}, "name                               vhost  user   client_id       protocol    ssl    connected_at\n" +
			"127.0.0.1:50000 -> 127.0.0.1:1883  /      alice  dev\\t1\\x1b[31m  MQTT 5.0    false  2026-01-01T00:00:00Z\n" +
			"10.0.0.2:6000 -> 10.0.0.1:8883     t1     bob    sensor          MQTT 3.1.1  true   2026-01-01T00:00:00Z\n"},
		{"close_connection", []string{"close_connection", "127.0.0.1:50000 -> 127.0.0.1:1883"}, []exchange{
			{method: "DELETE", uri: "/api/connections/127.0.0.1:50000%20-%3E%20127.0.0.1:1883"},
		}, "closed connection \"127.0.0.1:50000 -> 127.0.0.1:1883\"\n"},
		{"close_connection with reason", []string{"close_connection", "a -> b", "maintenance window"}, []exchange{
			{method: "DELETE", uri: "/api/connections/a%20-%3E%20b", header: http.Header{"X-Reason": {"maintenance window"}}},
		}, "closed connection \"a -> b\"\n"},
		{"list_sessions", []string{"list_sessions", "-p", "/"}, []exchange{
			{method: "GET", uri: "/api/sessions/%2F", resp: `[` +
				`{"name":"mqtt.dev1","vhost":"/","client_id":"dev1","connected":true,"durable":true,"messages":5,` +
				`"expiry_interval":3600,"subscriptions":[{"filter":"a/#","qos":1},{"filter":"b","qos":0}],` +
				`"will":{"topic":"st/dev1","qos":1,"pending":true,"fires_at":1700000000000}},` +
				`{"name":"mqtt.dev2","vhost":"/","connected":false,"durable":false,"messages":0,"expiry_interval":0,"subscriptions":[],"will":null}]`},
		}, "client_id  connected  durable  subscriptions  messages  expiry_interval  will\n" +
			"dev1       true       true     2              5         3600             st/dev1 qos=1 pending, fires 2023-11-14T22:13:20Z\n" +
			"dev2       false      false    0              0         0\n"},
		{"delete_session", []string{"delete_session", "-p", "t/1", "dev/1"}, []exchange{
			{method: "DELETE", uri: "/api/sessions/t%2F1/dev%2F1"},
		}, "deleted the session of client \"dev/1\" on vhost \"t/1\"\n"},
		{"delete_session default vhost", []string{"delete_session", "dev1"}, []exchange{
			{method: "DELETE", uri: "/api/sessions/%2F/dev1"},
		}, "deleted the session of client \"dev1\" on vhost \"/\"\n"},
		{"export_definitions stdout", []string{"export_definitions"}, []exchange{
			{method: "GET", uri: "/api/definitions", resp: `{"users":[],"vhosts":[{"name":"/"}]}`},
		}, "{\n  \"users\": [],\n  \"vhosts\": [\n    {\n      \"name\": \"/\"\n    }\n  ]\n}\n"},
		{"export_definitions -", []string{"export_definitions", "-"}, []exchange{
			{method: "GET", uri: "/api/definitions", resp: `{"vhosts":[]}`},
		}, "{\n  \"vhosts\": []\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFakeAPI(t, tt.api...)
			code, stdout, stderr := ctl(t, tt.args...)
			checkRun(t, tt.args, code, stdout, stderr, 0, tt.wantOut, "")
		})
	}
}

func TestCtlJSON(t *testing.T) {
	users := `[{"name":"alice","tags":["management"]},{"name":"guest","tags":"administrator"}]`
	perms := `[{"user":"alice","vhost":"/","configure":".*","write":".*","read":".*"},` +
		`{"user":"bob","vhost":"t1","configure":"","write":"","read":""}]`
	tests := []struct {
		args []string
		api  exchange
		want string
	}{
		{[]string{"list_users", "--json"}, exchange{method: "GET", uri: "/api/users", resp: users}, users},
		{[]string{"--json", "list_vhosts"}, exchange{method: "GET", uri: "/api/vhosts", resp: `[{"name":"/"}]`}, `[{"name":"/"}]`},
		{[]string{"list_connections", "--json"}, exchange{method: "GET", uri: "/api/connections", resp: `[]`}, `[]`},
		{[]string{"list_sessions", "--json", "-p", "t1"}, exchange{method: "GET", uri: "/api/sessions/t1", resp: `[{"name":"mqtt.a"}]`}, `[{"name":"mqtt.a"}]`},
		{[]string{"list_permissions", "--json", "-p", "t1"}, exchange{method: "GET", uri: "/api/permissions", resp: perms},
			`[{"user":"bob","vhost":"t1","configure":"","write":"","read":""}]`},
		{[]string{"list_permissions", "--json", "-p", "none"}, exchange{method: "GET", uri: "/api/permissions", resp: perms}, `[]`},
		{[]string{"list_topic_permissions", "--json"}, exchange{method: "GET", uri: "/api/topic-permissions", resp: `[]`}, `[]`},
		// A change prints nothing with --json.
		{[]string{"delete_user", "--json", "alice"}, exchange{method: "DELETE", uri: "/api/users/alice"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			newFakeAPI(t, tt.api)
			code, stdout, stderr := ctl(t, tt.args...)
			want := ""
			if tt.want != "" {
				var buf bytes.Buffer
				if err := json.Indent(&buf, []byte(tt.want), "", "  "); err != nil {
					t.Fatal(err)
				}
				want = buf.String() + "\n"
			}
			checkRun(t, tt.args, code, stdout, stderr, 0, want, "")
		})
	}
}

func TestCtlAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		api     []exchange
		wantErr string
	}{
		{"reason", []string{"delete_user", "nobody"}, []exchange{
			{method: "DELETE", uri: "/api/users/nobody", status: 404, resp: `{"error":"Object Not Found","reason":"user \"nobody\" not found"}`},
		}, "Error: user \"nobody\" not found\n"},
		{"error without reason", []string{"list_users"}, []exchange{
			{method: "GET", uri: "/api/users", status: 401, resp: `{"error":"not_authorised"}`},
		}, "Error: not_authorised\n"},
		{"forbidden", []string{"add_vhost", "x"}, []exchange{
			{method: "PUT", uri: "/api/vhosts/x", body: `{}`, status: 403,
				resp: `{"error":"not_authorised","reason":"administrator tag required"}`},
		}, "Error: administrator tag required\n"},
		{"bad request", []string{"set_permissions", "alice", "(", ".*", ".*"}, []exchange{
			{method: "PUT", uri: "/api/permissions/%2F/alice", body: `{"configure":"(","write":".*","read":".*"}`, status: 400,
				resp: `{"error":"bad_request","reason":"configure: missing closing )"}`},
		}, "Error: configure: missing closing )\n"},
		{"not JSON", []string{"list_vhosts"}, []exchange{
			{method: "GET", uri: "/api/vhosts", status: 502, resp: "<html>upstream\tdown\n</html>"},
		}, "Error: 502 Bad Gateway: <html>upstream\\tdown\\n</html>\n"},
		{"not JSON, long", []string{"list_vhosts"}, []exchange{
			{method: "GET", uri: "/api/vhosts", status: 500, resp: strings.Repeat("x", 1000)},
		}, "Error: 500 Internal Server Error: " + strings.Repeat("x", ctlMaxErrorBody) + "…\n"},
		{"empty body", []string{"list_vhosts"}, []exchange{
			{method: "GET", uri: "/api/vhosts", status: 503},
		}, "Error: 503 Service Unavailable\n"},
		{"add_user exists", []string{"add_user", "alice", "pw"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: userAlice},
		}, "Error: user \"alice\" already exists (change_password and set_user_tags change it)\n"},
		{"add_user denied", []string{"add_user", "alice", "pw"}, []exchange{
			{method: "GET", uri: "/api/users/alice", status: 403, resp: `{"error":"not_authorised","reason":"Not administrator user"}`},
		}, "Error: Not administrator user\n"},
		{"change_password no user", []string{"change_password", "nobody", "pw"}, []exchange{
			{method: "GET", uri: "/api/users/nobody", status: 404, resp: `{"error":"Object Not Found","reason":"Not Found"}`},
		}, "Error: Not Found\n"},
		{"set_user_tags without a hash", []string{"set_user_tags", "alice", "x"}, []exchange{
			{method: "GET", uri: "/api/users/alice", resp: `{"name":"alice","tags":""}`},
		}, "Error: the API did not return the password_hash of user \"alice\", so its tags cannot be set without losing the password\n"},
		{"clear_topic_permissions unknown exchange", []string{"clear_topic_permissions", "alice", "amq.topic"}, []exchange{
			{method: "GET", uri: "/api/topic-permissions/%2F/alice", resp: `[{"user":"alice","vhost":"/","exchange":"mqtt.default","write":"a","read":"b"}]`},
		}, "Error: user \"alice\" has no topic permissions on exchange \"amq.topic\" of vhost \"/\"\n"},
		{"import rejected", []string{"import_definitions", "-"}, []exchange{
			{method: "POST", uri: "/api/definitions", body: `{"users":[{"name":""}]}`, status: 400,
				resp: `{"error":"bad_request","reason":"users[0].name: empty"}`},
		}, "Error: users[0].name: empty\n"},
		{"list not an array", []string{"list_users"}, []exchange{
			{method: "GET", uri: "/api/users", resp: `{"name":"alice"}`},
		}, "Error: GET /api/users: the response is not the expected JSON: json: cannot unmarshal object into Go value of type []map[string]interface {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFakeAPI(t, tt.api...)
			var code int
			var stdout, stderr string
			if tt.args[0] == "import_definitions" {
				code, stdout, stderr = executeIn(t, strings.NewReader(`{"users":[{"name":""}]}`), append([]string{"ctl"}, tt.args...)...)
			} else {
				code, stdout, stderr = ctl(t, tt.args...)
			}
			checkRun(t, tt.args, code, stdout, stderr, 1, "", tt.wantErr)
		})
	}
}

// executeIn is execute with stdin.
func executeIn(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		code = 1
		if !errors.Is(err, errReported) {
			errb.WriteString("turnstile: " + err.Error() + "\n")
		}
	}
	return code, out.String(), errb.String()
}

func TestCtlUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, stdout, stderr := ctl(t, "--uri", url, "--password", "topsecret", "list_users")
	host := strings.TrimPrefix(url, "http://")
	want := "Error: cannot reach the management API at " + host + ": is `turnstile serve` running? (connection refused)\n"
	if code != 1 || stdout != "" || stderr != want || strings.Contains(stderr, "topsecret") {
		t.Errorf("exit %d, stdout %q, stderr %q, want %q", code, stdout, stderr, want)
	}
	// The URI's user information is never repeated.
	code, _, stderr = ctl(t, "--uri", "http://admin:topsecret@"+host, "list_users")
	if code != 1 || strings.Contains(stderr, "topsecret") || !strings.Contains(stderr, "is `turnstile serve` running?") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = ctl(t, "--uri", "http://turnstile.invalid:15672", "list_users")
	if code != 1 || !strings.HasPrefix(stderr, "Error: cannot reach the management API at turnstile.invalid:15672: the name turnstile.invalid does not resolve") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestCtlTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	code, _, stderr := ctl(t, "--uri", srv.URL, "--timeout", "100ms", "list_vhosts")
	want := "Error: the management API at " + strings.TrimPrefix(srv.URL, "http://") + " did not answer in time (--timeout 100ms)\n"
	if code != 1 || stderr != want || time.Since(start) > 5*time.Second {
		t.Errorf("exit %d after %v, stderr %q, want %q", code, time.Since(start), stderr, want)
	}
}

// TestCtlCredentials: a flag wins over its environment variable, which wins over the URI's user
// information, which wins over guest/guest; the password is never printed.
func TestCtlCredentials(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, r.Host+" "+r.RequestURI+" "+u+":"+p)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"not_authorised","reason":"Login failed"}`)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the environment's URI was used over --uri: %s", r.RequestURI)
	}))
	t.Cleanup(other.Close)

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"defaults", nil, []string{"--uri", srv.URL}, "guest:guest"},
		{"env", map[string]string{envURI: srv.URL, envUser: "envuser", envPassword: "envpw"}, nil, "envuser:envpw"},
		{"flags win", map[string]string{envURI: other.URL, envUser: "envuser", envPassword: "envpw"},
			[]string{"--uri", srv.URL, "--user", "flaguser", "--password", "flagpw"}, "flaguser:flagpw"},
		{"flag user, env password", map[string]string{envPassword: "envpw"},
			[]string{"--uri", srv.URL, "--user", "flaguser"}, "flaguser:envpw"},
		{"uri user info", nil, []string{"--uri", "http://uriuser:uripw@" + host + "/"}, "uriuser:uripw"},
		{"env over uri user info", map[string]string{envUser: "envuser"},
			[]string{"--uri", "http://uriuser:uripw@" + host}, "envuser:uripw"},
		{"empty env is unset", map[string]string{envUser: "", envPassword: ""}, []string{"--uri", srv.URL}, "guest:guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envURI, envUser, envPassword} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			mu.Lock()
			got = nil
			mu.Unlock()
			args := append(append([]string{}, tt.args...), "list_users")
			code, stdout, stderr := ctl(t, args...)
			checkRun(t, args, code, stdout, stderr, 1, "", "Error: Login failed\n")
			mu.Lock()
			defer mu.Unlock()
			if want := []string{host + " /api/users " + tt.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("requests %q, want %q", got, want)
			}
		})
	}
}

func TestCtlURIPrefix(t *testing.T) {
	f := newFakeAPI(t, exchange{method: "GET", uri: "/mgmt/api/vhosts", resp: `[]`})
	code, stdout, stderr := ctl(t, "--uri", f.srv.URL+"/mgmt/", "list_vhosts")
	checkRun(t, nil, code, stdout, stderr, 0, "name\n", "")
}

func TestCtlBadURI(t *testing.T) {
	for _, uri := range []string{"ftp://host", "127.0.0.1:15672", "http://user:topsecret@", "http://a b:topsecret@x"} {
		code, stdout, stderr := ctl(t, "--uri", uri, "list_users")
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "Error: --uri: ") || strings.Contains(stderr, "topsecret") {
			t.Errorf("--uri %q: exit %d, stdout %q, stderr %q", uri, code, stdout, stderr)
		}
	}
}

func TestCtlUsage(t *testing.T) {
	t.Setenv(envURI, "http://127.0.0.1:1") // never reached
	for _, args := range [][]string{
		{"add_user", "alice"},
		{"set_permissions", "alice", ".*", ".*"},
		{"clear_topic_permissions"},
		{"close_connection", "a", "b", "c"},
		{"import_definitions"},
		{"list_users", "extra"},
		{"no_such_command"},
	} {
		code, stdout, stderr := ctl(t, args...)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "turnstile: ") || strings.Contains(stderr, "Usage:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	// ctl alone prints its help, listing the commands.
	code, stdout, _ := ctl(t)
	if code != 0 || !strings.Contains(stdout, "set_topic_permissions") || !strings.Contains(stdout, "--uri") {
		t.Errorf("ctl: exit %d, stdout %q", code, stdout)
	}
}

func TestCtlDefinitionsFiles(t *testing.T) {
	defs := `{"users":[{"name":"alice","password_hash":"h","hashing_algorithm":"lavinmq_bcrypt","tags":""}],"vhosts":[{"name":"/"}]}`
	dir := t.TempDir()
	out := filepath.Join(dir, "defs.json")
	newFakeAPI(t, exchange{method: "GET", uri: "/api/definitions", resp: defs},
		exchange{method: "POST", uri: "/api/definitions", body: defs, status: 204})

	code, stdout, stderr := ctl(t, "export_definitions", out)
	checkRun(t, nil, code, stdout, stderr, 0, "exported definitions to "+out+"\n", "")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	json.Indent(&buf, []byte(defs), "", "  ")
	if string(data) != buf.String()+"\n" {
		t.Errorf("file:\n%s\nwant:\n%s", data, buf.String())
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", st.Mode(), err)
	}

	code, stdout, stderr = ctl(t, "import_definitions", out)
	checkRun(t, nil, code, stdout, stderr, 0, "imported definitions from "+out+"\n", "")
}

func TestCtlImportDefinitionsStdin(t *testing.T) {
	defs := `{"vhosts":[{"name":"t1"}]}`
	newFakeAPI(t, exchange{method: "POST", uri: "/api/definitions", body: defs, status: 204})
	code, stdout, stderr := executeIn(t, strings.NewReader(defs), "ctl", "import_definitions", "-")
	checkRun(t, nil, code, stdout, stderr, 0, "imported definitions from stdin\n", "")
}

func TestCtlImportDefinitionsLocalErrors(t *testing.T) {
	newFakeAPI(t) // no request reaches the API
	bad := writeFile(t, "bad.json", `{"users": [`)
	code, stdout, stderr := ctl(t, "import_definitions", bad)
	checkRun(t, nil, code, stdout, stderr, 1, "", "Error: "+bad+": not valid JSON\n")

	missing := filepath.Join(t.TempDir(), "none.json")
	code, _, stderr = ctl(t, "import_definitions", missing)
	if code != 1 || !strings.HasPrefix(stderr, "Error: open "+missing) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestCtlNeverPrintsPassword(t *testing.T) {
	const pw = "Sup3r-s3cret-pw"
	newFakeAPI(t,
		exchange{method: "GET", uri: "/api/users/alice", status: 404, resp: `{"error":"Object Not Found","reason":"Not Found"}`},
		exchange{method: "PUT", uri: "/api/users/alice", body: `{"password":"` + pw + `","tags":""}`, status: 201},
		exchange{method: "GET", uri: "/api/users/alice", resp: userAlice},
		exchange{method: "PUT", uri: "/api/users/alice", body: `{"password":"` + pw + `","tags":"management,monitoring"}`,
			status: 400, resp: `{"error":"bad_request","reason":"password too weak"}`},
	)
	for _, args := range [][]string{{"add_user", "alice", pw}, {"change_password", "alice", pw}} {
		_, stdout, stderr := ctl(t, args...)
		if strings.Contains(stdout+stderr, pw) {
			t.Errorf("%s printed the password: stdout %q, stderr %q", args[0], stdout, stderr)
		}
	}
}
