package cli

import (
	"strings"
	"testing"
)

func TestCtlLimitCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		api     []exchange
		wantOut string
	}{
		{"set_vhost_limits replaces the vhost's limits", []string{"set_vhost_limits", "-p", "iot", `{"max-connections": 100, "max-sessions": -1}`}, []exchange{
			{method: "GET", uri: "/api/vhost-limits/iot", resp: `[{"vhost":"iot","value":{"max-connections":5,"max-retained":9}}]`},
			{method: "PUT", uri: "/api/vhost-limits/iot/max-connections", body: `{"value":100}`},
			{method: "PUT", uri: "/api/vhost-limits/iot/max-sessions", body: `{"value":-1}`},
			{method: "DELETE", uri: "/api/vhost-limits/iot/max-retained"},
		}, "set the limits of vhost \"iot\"\n"},
		{"clear_vhost_limits default vhost", []string{"clear_vhost_limits"}, []exchange{
			{method: "GET", uri: "/api/vhost-limits/%2F", resp: `[{"vhost":"/","value":{"max-connections":5}}]`},
			{method: "DELETE", uri: "/api/vhost-limits/%2F/max-connections"},
		}, "cleared the limits of vhost \"/\"\n"},
		{"list_vhost_limits --global", []string{"list_vhost_limits", "--global"}, []exchange{
			{method: "GET", uri: "/api/vhost-limits", resp: `[{"vhost":"/","value":{"max-sessions":10,"max-connections":5}},{"vhost":"iot","value":{}}]`},
		}, "vhost  limits\n/      max-connections=5 max-sessions=10\niot\n"},
		{"set_user_limits", []string{"set_user_limits", "fleet", `{"max-connections": 2}`}, []exchange{
			{method: "GET", uri: "/api/user-limits/fleet", resp: `[]`},
			{method: "PUT", uri: "/api/user-limits/fleet/max-connections", body: `{"value":2}`},
		}, "set the limits of user \"fleet\"\n"},
		{"clear_user_limits one", []string{"clear_user_limits", "fleet", "max-connections"}, []exchange{
			{method: "DELETE", uri: "/api/user-limits/fleet/max-connections"},
		}, "cleared the limit max-connections of user \"fleet\"\n"},
		{"list_user_limits USER", []string{"list_user_limits", "fleet"}, []exchange{
			{method: "GET", uri: "/api/user-limits/fleet", resp: `[{"user":"fleet","value":{"max-connections":2}}]`},
		}, "user   limits\nfleet  max-connections=2\n"},
		{"ban", []string{"ban", "peerhost_net", "10.0.0.0/8", "--until", "2030-01-02T03:04:05Z", "--reason", "scanner"}, []exchange{
			{method: "POST", uri: "/api/bans", body: `{"as":"peerhost_net","who":"10.0.0.0/8","until":"2030-01-02T03:04:05Z","reason":"scanner"}`,
				status: 201, resp: `{"id":"abc","as":"peerhost_net","who":"10.0.0.0/8","by":"admin","reason":"scanner","at":"2026-01-01T00:00:00Z","until":"2030-01-02T03:04:05Z"}`},
		}, "banned peerhost_net \"10.0.0.0/8\" until 2030-01-02T03:04:05Z (ban abc)\n"},
		{"unban", []string{"unban", "abc"}, []exchange{
			{method: "DELETE", uri: "/api/bans/abc"},
		}, "lifted ban abc\n"},
		{"list_bans", []string{"list_bans"}, []exchange{
			{method: "GET", uri: "/api/bans", resp: `[{"id":"abc","as":"clientid","who":"dev\u001b","by":"admin","reason":"","at":"2026-01-01T00:00:00Z","until":"2027-01-01T00:00:00Z"}]`},
		}, "id   as        who      until                 by     reason\nabc  clientid  dev\\x1b  2027-01-01T00:00:00Z  admin\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newFakeAPI(t, tt.api...)
			code, stdout, stderr := ctl(t, tt.args...)
			checkRun(t, tt.args, code, stdout, stderr, 0, tt.wantOut, "")
		})
	}
}

func TestCtlLimitUsage(t *testing.T) {
	t.Setenv(envURI, "http://127.0.0.1:1") // never reached
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"set_vhost_limits", "max-connections=5"}, "must be a JSON object"},
		{[]string{"set_user_limits", "u", `{"max-connections": 1.5}`}, "max-connections: 1.5 is not an integer"},
		{[]string{"ban", "clientid", "x", "--for", "1h", "--until", "2030-01-01T00:00:00Z"}, "exclude each other"},
		{[]string{"ban", "clientid"}, "accepts 2 arg"},
	} {
		code, stdout, stderr := ctl(t, tt.args...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

// The commands against a whole broker: a vhost limit set with ctl holds MQTT clients, a ban
// added with ctl disconnects and refuses one.
func TestCtlLimitsEndToEnd(t *testing.T) {
	b := startE2EBroker(t)
	t.Setenv(envURI, b.apiURL)
	t.Setenv(envUser, "guest")
	t.Setenv(envPassword, "guest")
	must := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := ctl(t, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("ctl %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		return stdout
	}
	must("set_vhost_limits", "-p", "/", `{"max-connections": 1}`)
	if out := must("list_vhost_limits"); !strings.Contains(out, "max-connections=1") {
		t.Fatalf("list_vhost_limits: %q", out)
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "first", "guest", "guest"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "second", "guest", "guest"); err == nil {
		t.Fatalf("a second connection over max-connections 1: %v", err)
	}
	must("clear_vhost_limits", "-p", "/")
	_, discs, err := mqttLogin(t, b.mqttAddr, "victim", "guest", "guest")
	if err != nil {
		t.Fatal(err)
	}
	out := must("ban", "clientid", "victim", "--for", "1h", "--reason", "test")
	if d := <-discs; d.ReasonCode != 0x98 {
		t.Fatalf("the banned client got DISCONNECT %#x", d.ReasonCode)
	}
	id := out[strings.LastIndex(out, "(ban ")+5 : len(out)-2]
	if list := must("list_bans"); !strings.Contains(list, id) || !strings.Contains(list, "victim") {
		t.Fatalf("list_bans: %q", list)
	}
	if _, _, err := mqttLogin(t, b.mqttAddr, "victim", "guest", "guest"); err == nil {
		t.Fatal("a banned client id connected")
	}
	must("unban", id)
	if _, _, err := mqttLogin(t, b.mqttAddr, "victim", "guest", "guest"); err != nil {
		t.Fatalf("after unban: %v", err)
	}
}
