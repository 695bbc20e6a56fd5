package config

import (
	"strings"
	"testing"
	"time"
)

func TestCredentialKeys(t *testing.T) {
	src := `[main]
auth_backends = local, oauth
data_dir = /var/lib/ts
[mqtt]
will_on_reauth_failure = suppress
expiry_action = deny_only
[oauth]
issuer = https://idp.example.com/realms/iot
resource_server_id = turnstile
scope_prefix =
leeway = 5
[tokens]
port = 8090
subscribed_notices = ws, wss
`
	c, err := Parse("t.ini", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UsesOAuth() || c.OAuth.Leeway != 5*time.Second || c.MQTT.WillOnReauthFailure != "suppress" || c.MQTT.ExpiryAction != "deny_only" {
		t.Fatalf("parsed %+v %+v", c.OAuth, c.MQTT)
	}
	if p := c.OAuthScopePrefix(); p == nil || *p != "" {
		t.Fatalf("scope_prefix written empty: %v, want an explicit empty prefix", p)
	}
	if p := Default().OAuthScopePrefix(); p != nil {
		t.Fatalf("scope_prefix absent: %q, want nil (LavinMQ's default)", *p)
	}
	if !c.Tokens.Enabled() || c.TokenKeyFile() != "/var/lib/ts.tokens.key" {
		t.Fatalf("tokens: enabled %v, key file %q", c.Tokens.Enabled(), c.TokenKeyFile())
	}

	bad := "[main]\nauth_backends = local,oauth\n[tokens]\nsubscribed_notices = tcp, amqp\n"
	c, err = Parse("t.ini", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(c)
	for _, want := range []string{"[main] auth_backends: lists oauth, but [oauth] has no issuer", `[tokens] subscribed_notices: "amqp" is not an MQTT listener`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v\nwant %q", err, want)
		}
	}
	if _, err := Parse("t.ini", []byte("[main]\nauth_backends = local,ldap\n")); err == nil || !strings.Contains(err.Error(), `unknown authentication provider "ldap"`) {
		t.Errorf("unknown backend: %v", err)
	}
}

// The password verifier key lives beside the data directory unless named, never inside it; with
// state in memory it is drawn per process (no file).
func TestPasswordKeyFile(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[main]\ndata_dir = /var/lib/ts/\n", "/var/lib/ts.auth.key"},
		{"[main]\ndata_dir = /var/lib/ts\nauth_key_file = /etc/turnstile/auth.key\n", "/etc/turnstile/auth.key"},
		{"[main]\ndata_dir =\n", ""},
		{"[main]\ndata_dir =\nauth_key_file = /k\n", "/k"},
	} {
		c, err := Parse("t.ini", []byte(tt.src))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.PasswordKeyFile(); got != tt.want {
			t.Errorf("%q: PasswordKeyFile() = %q, want %q", tt.src, got, tt.want)
		}
	}
}
