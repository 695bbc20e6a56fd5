package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodINI = `# Turnstile configuration
; semicolon comments too

[main]
log_level = debug
log_format=json

data_dir = /var/lib/turnstile
fsync = interval
fsync_interval = 250

[mqtt]
  bind = 0.0.0.0
port = 11883
max_inflight_messages = 100
max_packet_size = 1048576
max_keepalive = 600
receive_maximum = 50
max_queued_messages = 5000
max_queued_bytes = 1048576
max_topic_alias = 0
sys_interval = 0
max_session_expiry = 86400
retain_available = No
allow_zero_length_clientid = OFF

[ mgmt ]
bind = ::1
port = -1
`

func TestParseGoodFile(t *testing.T) {
	c, err := Parse("turnstile.ini", []byte(goodINI))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		Main: Main{LogLevel: "debug", LogFormat: "json", DataDir: "/var/lib/turnstile", Fsync: "interval", FsyncInterval: 250,
			AuthBackends: "local", DefaultUser: "guest", DefaultPassword: "guest", DefaultUserOnlyLoopback: true,
			TLSMinVersion: "1.2"},
		MQTT: MQTT{
			DefaultVhost: "/", AnonymousUser: "anonymous", TLSPort: 8883, WSPort: 0, WSSPort: 8084,
			Bind:                    "0.0.0.0",
			Port:                    11883,
			MaxInflightMessages:     100,
			MaxPacketSize:           1048576,
			MaxConnectSize:          65536,
			MaxKeepalive:            600,
			ReceiveMaximum:          50,
			MaxQueuedMessages:       5000,
			MaxQueuedBytes:          1048576,
			MaxTopicAlias:           0,
			SysInterval:             0,
			MaxSessionExpiry:        86400,
			RetainAvailable:         false,
			AllowZeroLengthClientID: false,

			MaxConnections: 100000, MaxSubscriptionsPerClient: 10000, MaxSessionsPerVhost: 200000,
			MaxRetainedPerVhost: 1000000, MaxConnectRate: 100, MaxConnectBurst: 1000, ConnectRateExemptLoopback: true,
		},
		Mgmt:   Mgmt{Bind: "::1", Port: -1, TLSPort: 15671},
		Source: "turnstile.ini",
	}
	credentialDefaults(want) // the credential keys are tested in credentials_test.go
	want.lines = c.lines     // positions are checked by the error tests
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", c, want)
	}
	if got := c.MQTTAddr(); got != "0.0.0.0:11883" {
		t.Errorf("MQTTAddr = %q", got)
	}
	if got := c.MgmtAddr(); got != "[::1]:-1" {
		t.Errorf("MgmtAddr = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", home)
	c := Default()
	want := Config{
		Main: Main{LogLevel: "info", LogFormat: "text", DataDir: filepath.Join(home, ".local/share/turnstile"), Fsync: "always", FsyncInterval: 100,
			AuthBackends: "local", DefaultUser: "guest", DefaultPassword: "guest", DefaultUserOnlyLoopback: true,
			TLSMinVersion: "1.2"},
		MQTT: MQTT{
			DefaultVhost: "/", AnonymousUser: "anonymous", TLSPort: 8883, WSPort: 0, WSSPort: 8084,
			Bind:                    "127.0.0.1",
			Port:                    1883,
			MaxInflightMessages:     65535,
			MaxPacketSize:           1048576,
			MaxConnectSize:          65536,
			MaxKeepalive:            0,
			ReceiveMaximum:          1024,
			MaxQueuedMessages:       1000,
			MaxQueuedBytes:          16777216,
			MaxTopicAlias:           1024,
			SysInterval:             10 * time.Second,
			MaxSessionExpiry:        0,
			RetainAvailable:         true,
			AllowZeroLengthClientID: true,

			MaxConnections: 100000, MaxSubscriptionsPerClient: 10000, MaxSessionsPerVhost: 200000,
			MaxRetainedPerVhost: 1000000, MaxConnectRate: 100, MaxConnectBurst: 1000, ConnectRateExemptLoopback: true,
		},
		Mgmt: Mgmt{Bind: "127.0.0.1", Port: 15672, TLSPort: 15671},
	}
	credentialDefaults(&want)
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Default:\n got %+v\nwant %+v", *c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate: %v", err)
	}
	if got := c.MQTTAddr(); got != "127.0.0.1:1883" {
		t.Errorf("MQTTAddr = %q", got)
	}
	if got := c.MgmtAddr(); got != "127.0.0.1:15672" {
		t.Errorf("MgmtAddr = %q", got)
	}

	// An empty file, or one of only comments and empty sections, is the defaults.
	for _, src := range []string{"", "\n\n", "# nothing\n[main]\n[mqtt]\n[mgmt]\n", "\xef\xbb\xbf[main]\r\nlog_level = info\r\n"} {
		got, err := Parse("empty.ini", []byte(src))
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if got.Main != want.Main || got.MQTT != want.MQTT || got.Mgmt != want.Mgmt || got.Source != "empty.ini" {
			t.Errorf("Parse(%q) = %+v, want the defaults", src, got)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turnstile.ini")
	if err := os.WriteFile(path, []byte(goodINI), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Source != path || c.MQTT.Port != 11883 {
		t.Errorf("Load: Source %q, port %d", c.Source, c.MQTT.Port)
	}

	if err := os.WriteFile(path, []byte("[mqtt]\nport = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+":2: [mqtt] port: ") {
		t.Errorf("Load bad file: %v, want an error naming %s:2", err, path)
	}

	if _, err := Load(filepath.Join(t.TempDir(), "missing.ini")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load missing file: %v, want os.ErrNotExist", err)
	}
}

// TestParseErrors feeds one bad line, at line 3, and checks the whole message and the Error fields.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		section string // the section header on line 2
		line    string // line 3
		want    string // the whole message
		key     string // Error.Key
	}{
		{"int syntax", "mqtt", "port = abc", `t.ini:3: [mqtt] port: "abc" is not an integer`, "port"},
		{"int empty", "mqtt", "port =", `t.ini:3: [mqtt] port: "" is not an integer`, "port"},
		{"int trailing comment", "mqtt", "port = 1883 # plain", `t.ini:3: [mqtt] port: "1883 # plain" is not an integer`, "port"},
		{"int float", "mqtt", "max_keepalive = 1.5", `t.ini:3: [mqtt] max_keepalive: "1.5" is not an integer`, "max_keepalive"},
		{"int overflow", "mqtt", "max_queued_bytes = 99999999999999999999", `t.ini:3: [mqtt] max_queued_bytes: "99999999999999999999" is too large for an integer`, "max_queued_bytes"},
		{"int64 suffix", "mqtt", "max_queued_bytes = 16MiB", `t.ini:3: [mqtt] max_queued_bytes: "16MiB" is not an integer`, "max_queued_bytes"},
		{"bool", "mqtt", "retain_available = maybe", `t.ini:3: [mqtt] retain_available: "maybe" is not a boolean (true/false, yes/no, on/off, 1/0)`, "retain_available"},
		{"seconds with unit", "mqtt", "sys_interval = 10s", `t.ini:3: [mqtt] sys_interval: "10s" is not a whole number of seconds`, "sys_interval"},
		{"seconds overflow", "mqtt", "sys_interval = 9223372036854775807", `t.ini:3: [mqtt] sys_interval: "9223372036854775807" is not a whole number of seconds`, "sys_interval"},

		{"port high", "mqtt", "port = 65536", `t.ini:3: [mqtt] port: 65536 is out of range -1..65535`, "port"},
		{"port low", "mqtt", "port = -2", `t.ini:3: [mqtt] port: -2 is out of range -1..65535`, "port"},
		{"mgmt port", "mgmt", "port = 70000", `t.ini:3: [mgmt] port: 70000 is out of range -1..65535`, "port"},
		{"inflight zero", "mqtt", "max_inflight_messages = 0", `t.ini:3: [mqtt] max_inflight_messages: 0 is out of range 1..65535`, "max_inflight_messages"},
		{"packet size", "mqtt", "max_packet_size = 268435456", `t.ini:3: [mqtt] max_packet_size: 268435456 is out of range 2..268435455`, "max_packet_size"},
		{"packet size low", "mqtt", "max_packet_size = 1", `t.ini:3: [mqtt] max_packet_size: 1 is out of range 2..268435455`, "max_packet_size"},
		{"keepalive", "mqtt", "max_keepalive = 65536", `t.ini:3: [mqtt] max_keepalive: 65536 is out of range 0..65535`, "max_keepalive"},
		{"receive maximum", "mqtt", "receive_maximum = 0", `t.ini:3: [mqtt] receive_maximum: 0 is out of range 1..65535`, "receive_maximum"},
		{"queued messages", "mqtt", "max_queued_messages = 0", `t.ini:3: [mqtt] max_queued_messages: 0 is too small, the minimum is 1`, "max_queued_messages"},
		{"queued bytes", "mqtt", "max_queued_bytes = 1023", `t.ini:3: [mqtt] max_queued_bytes: 1023 is too small, the minimum is 1024`, "max_queued_bytes"},
		{"packet above queue", "mqtt", "max_queued_bytes = 65536", `t.ini:3: [mqtt] max_packet_size: 1048576 is above max_queued_bytes (65536): a message that large could never be delivered`, "max_packet_size"},
		{"connect size low", "mqtt", "max_connect_size = 63", `t.ini:3: [mqtt] max_connect_size: 63 is out of range 64..268435455`, "max_connect_size"},
		{"topic alias", "mqtt", "max_topic_alias = 65536", `t.ini:3: [mqtt] max_topic_alias: 65536 is out of range 0..65535`, "max_topic_alias"},
		{"sys interval", "mqtt", "sys_interval = -1", `t.ini:3: [mqtt] sys_interval: -1 is too small, the minimum is 0`, "sys_interval"},
		{"session expiry", "mqtt", "max_session_expiry = 4294967296", `t.ini:3: [mqtt] max_session_expiry: 4294967296 is out of range 0..4294967295`, "max_session_expiry"},
		{"log level", "main", "log_level = verbose", `t.ini:3: [main] log_level: "verbose" is not one of debug, info, warn, error`, "log_level"},
		{"log level case", "main", "log_level = INFO", `t.ini:3: [main] log_level: "INFO" is not one of debug, info, warn, error`, "log_level"},
		{"log format", "main", "log_format = xml", `t.ini:3: [main] log_format: "xml" is not one of text, json`, "log_format"},
		{"bind host name", "mqtt", "bind = example.com", `t.ini:3: [mqtt] bind: "example.com" is not an IP address or "localhost"`, "bind"},
		{"bind empty", "mgmt", "bind =", `t.ini:3: [mgmt] bind: "" is not an IP address or "localhost"`, "bind"},
		{"bind with port", "mqtt", "bind = 127.0.0.1:1883", `t.ini:3: [mqtt] bind: "127.0.0.1:1883" is not an IP address or "localhost"`, "bind"},
		{"bind bracketed", "mqtt", "bind = [::1]", `t.ini:3: [mqtt] bind: "[::1]" is not an IP address or "localhost"`, "bind"},

		{"unknown key", "mqtt", "prot = 1883", `t.ini:3: [mqtt] prot: unknown key (did you mean "port"?)`, "prot"},
		{"unknown key far", "mqtt", "zzz_unheard_of = 8883", `t.ini:3: [mqtt] zzz_unheard_of: unknown key`, "zzz_unheard_of"},
		{"key in wrong section", "main", "max_packet_size = 10", `t.ini:3: [main] max_packet_size: unknown key (it belongs in [mqtt])`, "max_packet_size"},
		{"key case", "mqtt", "Port = 1883", `t.ini:3: [mqtt] Port: unknown key (did you mean "port"?)`, "Port"},
		{"no equals", "mqtt", "port 1883", `t.ini:3: [mqtt] expected "key = value", "[section]" or a comment, found "port 1883"`, ""},
		{"no key", "mqtt", "= 1883", `t.ini:3: [mqtt] missing key name before "="`, ""},
		{"unclosed header", "mqtt", "[mgmt", `t.ini:3: section header "[mgmt" has no closing "]"`, ""},
		{"empty header", "mqtt", "[ ]", `t.ini:3: empty section name`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "# a comment\n[" + tt.section + "]\n" + tt.line + "\n"
			c, err := Parse("t.ini", []byte(src))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded: %+v", src, c)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			wantSection := tt.section
			if strings.HasPrefix(tt.line, "[") {
				wantSection = ""
			}
			if ce.File != "t.ini" || ce.Line != 3 || ce.Section != wantSection || ce.Key != tt.key {
				t.Errorf("Error fields = %+v, want file t.ini, line 3, section %q, key %q", *ce, wantSection, tt.key)
			}
		})
	}
}

func TestParseUnknownSection(t *testing.T) {
	src := "[amqp]\nport = 5672\nanything = goes\n[mqtt]\nport = 1\n"
	c, err := Parse("t.ini", []byte(src))
	want := `t.ini:1: [amqp] unknown section (known sections: main, mqtt, mgmt, oauth, tokens)`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse: %v\nwant exactly %s (the keys of an unknown section are not reported)", err, want)
	}
	if c != nil {
		t.Error("Parse returned a Config with an error")
	}
}

func TestParseDuplicates(t *testing.T) {
	src := "[mqtt]\nport = 1\nport = 2\n[mgmt]\nport = 3\n[mqtt]\nport = 4\nbind = ::\n"
	_, err := Parse("t.ini", []byte(src))
	want := []string{
		`t.ini:3: [mqtt] port: duplicate key (first set on line 2)`,
		`t.ini:6: [mqtt] section appears twice (first on line 1)`,
		`t.ini:7: [mqtt] port: duplicate key (first set on line 2)`,
	}
	checkErrors(t, err, want)
}

func TestParseKeyOutsideSection(t *testing.T) {
	_, err := Parse("t.ini", []byte("port = 1883\n[mqtt]\n"))
	checkErrors(t, err, []string{`t.ini:1: port: key outside a section; put it under one of [main], [mqtt], [mgmt], [oauth], [tokens]`})
}

func TestParseComments(t *testing.T) {
	src := "# port = abc\n  ; port = abc\n\t#[bogus]\n[mqtt]\n# port = abc\n\n   port = 2000   \n; the end"
	c, err := Parse("t.ini", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.MQTT.Port != 2000 {
		t.Errorf("port = %d, want 2000", c.MQTT.Port)
	}
}

func TestParseValueKeepsEquals(t *testing.T) {
	// Only the first "=" separates key from value.
	_, err := Parse("t.ini", []byte("[main]\nlog_level = a=b\n"))
	checkErrors(t, err, []string{`t.ini:2: [main] log_level: "a=b" is not one of debug, info, warn, error`})
}

func TestParseBooleans(t *testing.T) {
	for raw, want := range map[string]bool{
		"true": true, "TRUE": true, "yes": true, "Yes": true, "on": true, "1": true,
		"false": false, "False": false, "no": false, "NO": false, "off": false, "0": false,
	} {
		src := "[mqtt]\nretain_available = " + raw + "\nallow_zero_length_clientid = " + raw + "\n"
		c, err := Parse("t.ini", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if c.MQTT.RetainAvailable != want || c.MQTT.AllowZeroLengthClientID != want {
			t.Errorf("%q: got %v/%v, want %v", raw, c.MQTT.RetainAvailable, c.MQTT.AllowZeroLengthClientID, want)
		}
	}
	for _, raw := range []string{"", "t", "y", "2", "enabled", "truee"} {
		_, err := Parse("t.ini", []byte("[mqtt]\nretain_available = "+raw+"\n"))
		if err == nil || !strings.Contains(err.Error(), "t.ini:2: [mqtt] retain_available: ") {
			t.Errorf("%q: error %v, want one naming t.ini:2 and the key", raw, err)
		}
	}
}

func TestParseAcceptedEdges(t *testing.T) {
	for _, line := range []string{
		"[mqtt]\nport = 0", "[mqtt]\nport = -1", "[mqtt]\nport = 65535",
		"[mqtt]\nbind = ::", "[mqtt]\nbind = localhost", "[mqtt]\nbind = fe80::1%eth0", "[mgmt]\nbind = 0.0.0.0",
		"[mqtt]\nmax_packet_size = 2", "[mqtt]\nmax_packet_size = 268435455\nmax_queued_bytes = 268435455",
		"[mqtt]\nmax_session_expiry = 4294967295", "[mqtt]\nmax_queued_bytes = 1024\nmax_packet_size = 1024", "[mqtt]\nmax_connect_size = 64",
		"[mqtt]\nmax_queued_bytes = 9223372036854775807", "[mqtt]\nmax_topic_alias = 65535",
		"[mqtt]\nport = +1883", "[main]\nlog_level = warn", "[main]\nlog_level = error",
	} {
		if _, err := Parse("t.ini", []byte(line)); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
	c, err := Parse("t.ini", []byte("[mqtt]\nsys_interval = 30\n"))
	if err != nil || c.MQTT.SysInterval != 30*time.Second {
		t.Errorf("sys_interval = 30: %v, %v", c, err)
	}
}

// TestParseAllErrors checks that one file with many problems reports every one of them, in line
// order, decoding and range errors mixed.
func TestParseAllErrors(t *testing.T) {
	src := strings.Join([]string{
		"stray = 1",           // 1
		"[main]",              // 2
		"log_level = loud",    // 3
		"log_format = json",   // 4
		"[mqtt]",              // 5
		"port = abc",          // 6
		"max_packet_size = 1", // 7
		"retain_available = sometimes",
		"nope = 1", // 9
		"port = 1", // 10
		"[amqp]",   // 11
		"issuer = x",
		"[mgmt]",       // 13
		"port = 99999", // 14
		"bind = *",     // 15
	}, "\n")
	_, err := Parse("turnstile.ini", []byte(src))
	checkErrors(t, err, []string{
		`turnstile.ini:1: stray: key outside a section; put it under one of [main], [mqtt], [mgmt], [oauth], [tokens]`,
		`turnstile.ini:3: [main] log_level: "loud" is not one of debug, info, warn, error`,
		`turnstile.ini:6: [mqtt] port: "abc" is not an integer`,
		`turnstile.ini:7: [mqtt] max_packet_size: 1 is out of range 2..268435455`,
		`turnstile.ini:8: [mqtt] retain_available: "sometimes" is not a boolean (true/false, yes/no, on/off, 1/0)`,
		`turnstile.ini:9: [mqtt] nope: unknown key`,
		`turnstile.ini:10: [mqtt] port: duplicate key (first set on line 6)`,
		`turnstile.ini:11: [amqp] unknown section (known sections: main, mqtt, mgmt, oauth, tokens)`,
		`turnstile.ini:14: [mgmt] port: 99999 is out of range -1..65535`,
		`turnstile.ini:15: [mgmt] bind: "*" is not an IP address or "localhost"`,
	})
}

func TestValidateInCode(t *testing.T) {
	c := Default()
	c.MQTT.Port = 100000
	c.MQTT.SysInterval = -500 * time.Millisecond
	c.Main.LogFormat = ""
	checkErrors(t, c.Validate(), []string{
		`[main] log_format: "" is not one of text, json`,
		`[mqtt] port: 100000 is out of range -1..65535`,
		`[mqtt] sys_interval: -500ms is too small, the minimum is 0`,
	})

	// A value changed in code after Load is not blamed on the file.
	c, err := Parse("t.ini", []byte("[mqtt]\nport = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.MQTT.Port = -5
	c.MQTT.MaxKeepalive = -1
	checkErrors(t, c.Validate(), []string{
		`t.ini:2: [mqtt] port: -5 is out of range -1..65535`,
		`[mqtt] max_keepalive: -1 is out of range 0..65535`,
	})
}

// TestKeysCoverEveryField checks that the key table has exactly one key per field of Main, MQTT and
// Mgmt, so that no field is left without a key, a default in Keys() or a description.
func TestKeysCoverEveryField(t *testing.T) {
	c := Default()
	fields := map[uintptr]string{}
	for _, sec := range []reflect.Value{reflect.ValueOf(&c.Main).Elem(), reflect.ValueOf(&c.MQTT).Elem(), reflect.ValueOf(&c.Mgmt).Elem(),
		reflect.ValueOf(&c.OAuth).Elem(), reflect.ValueOf(&c.Tokens).Elem()} {
		for i := range sec.NumField() {
			fields[sec.Field(i).Addr().Pointer()] = sec.Type().Name() + "." + sec.Type().Field(i).Name
		}
	}
	seen := map[string]bool{}
	for _, k := range keys {
		name := "[" + k.section + "] " + k.name
		if seen[name] {
			t.Errorf("%s: declared twice", name)
		}
		seen[name] = true
		p := reflect.ValueOf(k.field(c)).Pointer()
		if _, ok := fields[p]; !ok {
			t.Errorf("%s: points at no field of Main, MQTT or Mgmt, or at one another key already sets", name)
		}
		delete(fields, p)
		format(k.field(c)) // panics on a type set cannot decode
		if k.check != nil {
			if err := k.check(k.field(c)); err != nil {
				t.Errorf("%s: the default is invalid: %v", name, err)
			}
		}
	}
	for _, f := range fields {
		t.Errorf("field %s has no configuration key", f)
	}

	docs := Keys()
	if len(docs) != len(keys) {
		t.Fatalf("Keys() has %d entries, the table %d", len(docs), len(keys))
	}
	for _, d := range docs {
		if d.Section == "" || d.Key == "" || strings.TrimSpace(d.Description) == "" {
			t.Errorf("Keys(): incomplete entry %+v", d)
		}
		// Keys whose empty default means "off" (a path or file not configured) may be empty.
		emptyOK := map[string]bool{"definitions_file": true, "tls_cert": true, "tls_key": true, "tls_ca_cert": true, "unix_path": true,
			"log_file": true, "audit_log": true, "tls_bind": true, "ws_bind": true, "wss_bind": true,
			"issuer": true, "resource_server_id": true, "additional_scopes_keys": true, "scope_prefix": true, "audience": true,
			"jwks_url": true, "jwks_file": true, "key_file": true, "auth_key_file": true, "subscribed_notices": true,
			"allowed_hosts": true}
		if d.Default == "" && d.Key != "bind" && !emptyOK[d.Key] {
			t.Errorf("Keys(): [%s] %s has no default", d.Section, d.Key)
		}
	}
}

// TestKeysDefaultsRoundTrip writes every documented default into a file and checks that parsing it
// gives Default(): the Default strings are exactly what a user would write.
func TestKeysDefaultsRoundTrip(t *testing.T) {
	var b strings.Builder
	section := ""
	for _, d := range Keys() {
		if d.Section != section {
			section = d.Section
			b.WriteString("[" + section + "]\n")
		}
		if !d.Literal { // an environment-dependent default is described, not written
			if d.Example == "" {
				t.Errorf("Keys(): [%s] %s: an environment-dependent default without an example", d.Section, d.Key)
			}
			continue
		}
		b.WriteString(d.Key + " = " + d.Default + "\n")
	}
	c, err := Parse("defaults.ini", []byte(b.String()))
	if err != nil {
		t.Fatalf("Parse of the documented defaults:\n%s\n%v", b.String(), err)
	}
	def := Default()
	if c.Main != def.Main || c.MQTT != def.MQTT || c.Mgmt != def.Mgmt || c.OAuth != def.OAuth || c.Tokens != def.Tokens {
		t.Errorf("documented defaults parse to %+v, want %+v", c, def)
	}
	want := map[string]string{
		"main.log_level": "info", "main.log_format": "text",
		"main.data_dir": defaultDataDirDoc, "main.log_file": "", "main.audit_log": "", "main.fsync": "always", "main.fsync_interval": "100",
		"main.auth_backends": "local", "main.default_user": "guest", "main.default_password": "guest", "main.auth_key_file": "",
		"main.default_user_only_loopback": "true", "main.definitions_file": "", "main.tls_cert": "",
		"main.tls_key": "", "main.tls_ca_cert": "", "main.tls_min_version": "1.2",
		"mqtt.default_vhost": "/", "mqtt.permission_check_enabled": "false", "mqtt.allow_anonymous": "false",
		"mqtt.anonymous_user": "anonymous", "mqtt.tls_port": "8883", "mqtt.ws_port": "0", "mqtt.wss_port": "8084",
		"mqtt.tls_bind": "", "mqtt.ws_bind": "", "mqtt.wss_bind": "",
		"mqtt.unix_path": "", "mqtt.tls_verify_peer": "false", "mqtt.tls_cert_login": "false",
		"mqtt.bind": "127.0.0.1", "mqtt.port": "1883", "mqtt.max_inflight_messages": "65535",
		"mqtt.max_packet_size": "1048576", "mqtt.max_connect_size": "65536", "mqtt.max_keepalive": "0", "mqtt.receive_maximum": "1024",
		"mqtt.max_queued_messages": "1000", "mqtt.max_queued_bytes": "16777216", "mqtt.max_topic_alias": "1024",
		"mqtt.sys_interval": "10", "mqtt.max_session_expiry": "0", "mqtt.retain_available": "true",
		"mqtt.allow_zero_length_clientid": "true", "mgmt.bind": "127.0.0.1", "mgmt.port": "15672", "mgmt.tls_port": "15671",
		"mqtt.will_on_reauth_failure": "publish", "mqtt.expiry_action": "disconnect", "mqtt.expiry_reason": "maximum_connect_time",
		"mqtt.token_uploads_per_minute": "6",
		"oauth.issuer":                  "", "oauth.resource_server_id": "", "oauth.preferred_username_claims": "sub,client_id",
		"oauth.additional_scopes_keys": "", "oauth.scope_prefix": "", "oauth.verify_aud": "true", "oauth.audience": "",
		"oauth.jwks_cache_ttl": "3600", "oauth.jwks_url": "", "oauth.jwks_file": "", "oauth.leeway": "30",
		"oauth.algorithms": "RS256,RS384,RS512,PS256,ES256,ES384,EdDSA", "oauth.auth_methods": "jwt",
		"oauth.max_token_lifetime": "86400",
		"tokens.bind":              "127.0.0.1", "tokens.port": "0", "tokens.tls_port": "0", "tokens.key_file": "",
		"tokens.max_lifetime": "2592000", "tokens.reject_long_expiry": "false", "tokens.legacy_api": "false",
		"tokens.notice_lead": "300", "tokens.subscribed_notices": "",
		// Limits (docs/security.md)
		"mqtt.max_connections": "100000", "mqtt.max_subscriptions_per_client": "10000", "mqtt.max_sessions_per_vhost": "200000",
		"mqtt.max_retained_per_vhost": "1000000", "mqtt.max_connect_rate": "100", "mqtt.max_connect_burst": "1000",
		"mqtt.connect_rate_exempt_loopback": "true", "mgmt.allowed_hosts": "",
	}
	for _, d := range Keys() {
		if got := d.Default; got != want[d.Section+"."+d.Key] {
			t.Errorf("Keys(): [%s] %s default %q, want %q", d.Section, d.Key, got, want[d.Section+"."+d.Key])
		}
	}
	if len(want) != len(Keys()) {
		t.Errorf("Keys() has %d keys, this test knows %d", len(Keys()), len(want))
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.ini", Line: 2, Section: "mqtt", Key: "port", Msg: "bad"}, "a.ini:2: [mqtt] port: bad"},
		{Error{Section: "mqtt", Key: "port", Msg: "bad"}, "[mqtt] port: bad"},
		{Error{Line: 4, Msg: "bad"}, "line 4: bad"},
		{Error{File: "a.ini", Msg: "bad"}, "a.ini: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d", len(want))
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not a joined error", err)
	}
	var got []string
	for _, e := range joined.Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("%v is not a *config.Error", e)
		}
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAllowedHostsKey(t *testing.T) {
	for _, ok := range []string{"", "mq.example.com", "mq.example.com, *.example.net", "*", "[::1]", "::1", "10.0.0.1"} {
		if _, err := Parse("t.ini", []byte("[mgmt]\nallowed_hosts = "+ok+"\n")); err != nil {
			t.Errorf("allowed_hosts = %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://mq.example.com", "mq.example.com:15672", "mq.example.com/api", "a*.example.com", "x.*.com"} {
		_, err := Parse("t.ini", []byte("[mgmt]\nallowed_hosts = "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "[mgmt] allowed_hosts") {
			t.Errorf("allowed_hosts = %s: %v", bad, err)
		}
	}
}
