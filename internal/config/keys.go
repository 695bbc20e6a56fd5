package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// key declares one configuration key: where it lives in the file, which Config field it sets, what
// values are valid and what it means. Adding a key is adding one entry to keys.
type key struct {
	section string
	name    string
	// field returns a pointer to the Config field: *string, *int, *int64, *bool or *time.Duration
	// (written in the file as whole seconds). The type decides how the value is decoded.
	field func(c *Config) any
	// check reports why the field's current value is not allowed; nil accepts any decodable value.
	// It receives what field returns.
	check func(v any) error
	doc   string
}

var keys = []key{
	{"main", "log_level", func(c *Config) any { return &c.Main.LogLevel }, oneOf("debug", "info", "warn", "error"),
		"Minimum level of log records: debug, info, warn or error."},
	{"main", "log_format", func(c *Config) any { return &c.Main.LogFormat }, oneOf("text", "json"),
		"Log record format: text (key=value) or json (one object a line, for log collectors)."},
	{"main", "log_file", func(c *Config) any { return &c.Main.LogFile }, nil,
		"File the log records are appended to, reopened on SIGHUP (after logrotate moved it); empty writes them to stderr (journald under systemd)."},
	{"main", "audit_log", func(c *Config) any { return &c.Main.AuditLog }, nil,
		"File the audit log is appended to: one JSON object per security event (logins and their failures, denials, disconnects, wills, revocations, bans), never a secret or a payload; created mode 0600, reopened on SIGHUP; empty turns it off."},
	{"main", "data_dir", func(c *Config) any { return &c.Main.DataDir }, nil,
		"Directory of the embedded store (sessions, queues, retained messages, wills, users, vhosts and permissions); empty keeps all state in memory only."},
	{"main", "fsync", func(c *Config) any { return &c.Main.Fsync }, oneOf("always", "interval"),
		"always: a QoS 1/2 message is acknowledged after its group commit is synced to disk; interval: after it is written, with the log synced every fsync_interval."},
	{"main", "fsync_interval", func(c *Config) any { return &c.Main.FsyncInterval }, intRange(1, 60000),
		"Milliseconds between log syncs when fsync = interval."},
	{"main", "auth_backends", func(c *Config) any { return &c.Main.AuthBackends }, backendList,
		"Ordered, comma-separated authentication providers; today: local."},
	{"main", "default_user", func(c *Config) any { return &c.Main.DefaultUser }, nonEmpty,
		"Name of the administrator created on first start, with full permissions on vhost /."},
	{"main", "default_password", func(c *Config) any { return &c.Main.DefaultPassword }, nil,
		"Password of the default user (stored as a bcrypt hash and a keyed verifier, never in clear); empty creates no default user."},
	{"main", "auth_key_file", func(c *Config) any { return &c.Main.AuthKeyFile }, nil,
		"Key file of the password verifiers (32 bytes, created mode 0600, refused when group or others may read it), kept outside the data directory; empty: beside data_dir, as <data_dir>.auth.key (with an empty data_dir, a key per process). Replacing it makes every user log in once more by the bcrypt hash."},
	{"main", "default_user_only_loopback", func(c *Config) any { return &c.Main.DefaultUserOnlyLoopback }, nil,
		"Whether the default user may log in only from a loopback address or the unix socket, on every listener."},
	{"main", "definitions_file", func(c *Config) any { return &c.Main.DefinitionsFile }, nil,
		"RabbitMQ definitions JSON (users, vhosts, permissions, topic permissions) imported at start."},
	{"main", "tls_cert", func(c *Config) any { return &c.Main.TLSCert }, nil,
		"PEM certificate chain for the TLS listeners; reloaded on SIGHUP."},
	{"main", "tls_key", func(c *Config) any { return &c.Main.TLSKey }, nil,
		"PEM private key for tls_cert; reloaded on SIGHUP."},
	{"main", "tls_ca_cert", func(c *Config) any { return &c.Main.TLSCACert }, nil,
		"PEM CA bundle that verifies client certificates."},
	{"main", "tls_min_version", func(c *Config) any { return &c.Main.TLSMinVersion }, oneOf("1.2", "1.3"),
		"Lowest TLS version accepted: 1.2, or 1.3 for TLS 1.3 only."},

	{"mqtt", "bind", func(c *Config) any { return &c.MQTT.Bind }, bindAddr,
		"Address the MQTT listener binds to: an IP address or localhost; 0.0.0.0 or :: for every interface."},
	{"mqtt", "port", func(c *Config) any { return &c.MQTT.Port }, intRange(-1, 65535),
		"TCP port of the MQTT listener; 0 or -1 disables it."},
	{"mqtt", "max_inflight_messages", func(c *Config) any { return &c.MQTT.MaxInflightMessages }, intRange(1, 65535),
		"Outbound QoS 1 and 2 messages a session may have unacknowledged; delivery waits at the cap."},
	{"mqtt", "max_packet_size", func(c *Config) any { return &c.MQTT.MaxPacketSize }, intRange(2, 268435455),
		"Largest packet accepted from a client, in bytes, fixed header included; larger packets close the connection. At most max_queued_bytes."},
	{"mqtt", "max_connect_size", func(c *Config) any { return &c.MQTT.MaxConnectSize }, intRange(64, 268435455),
		"Largest CONNECT accepted before login, in bytes (enough for any real will); a larger one is refused (MQTT 5 CONNACK 0x95) before its body is read."},
	{"mqtt", "max_keepalive", func(c *Config) any { return &c.MQTT.MaxKeepalive }, intRange(0, 65535),
		"Largest Keep Alive a client may ask for, in seconds; 0 means no cap."},
	{"mqtt", "receive_maximum", func(c *Config) any { return &c.MQTT.ReceiveMaximum }, intRange(1, 65535),
		"Inbound QoS 1 and 2 messages a client may have unacknowledged, sent to MQTT 5 clients as Receive Maximum. A v5 client over it gets DISCONNECT 0x93; a 3.1.1 client over it is read no further until its acknowledgements are sent, and one with more QoS 2 messages awaiting PUBREL is disconnected."},
	{"mqtt", "max_queued_messages", func(c *Config) any { return &c.MQTT.MaxQueuedMessages }, intRange(1, math.MaxInt),
		"Limit on the messages waiting in one session's outbound queue."},
	{"mqtt", "max_queued_bytes", func(c *Config) any { return &c.MQTT.MaxQueuedBytes }, intRange(1024, math.MaxInt64),
		"Limit on the bytes waiting in one session's outbound queue (a plain integer, no suffix)."},
	{"mqtt", "max_topic_alias", func(c *Config) any { return &c.MQTT.MaxTopicAlias }, intRange(0, 65535),
		"Topic Alias Maximum the server accepts from clients (MQTT 5); 0 disables inbound topic aliases."},
	{"mqtt", "sys_interval", func(c *Config) any { return &c.MQTT.SysInterval }, durationAtLeast(0),
		"Seconds between $SYS topic updates; 0 disables $SYS publishing."},
	{"mqtt", "max_session_expiry", func(c *Config) any { return &c.MQTT.MaxSessionExpiry }, intRange(0, math.MaxUint32),
		"Cap on a session's expiry interval in seconds (MQTT 5 Session Expiry Interval, and 3.1.1 persistent sessions); 0 means no cap."},
	{"mqtt", "retain_available", func(c *Config) any { return &c.MQTT.RetainAvailable }, nil,
		"Whether the server supports retained messages (MQTT 5 Retain Available)."},
	{"mqtt", "allow_zero_length_clientid", func(c *Config) any { return &c.MQTT.AllowZeroLengthClientID }, nil,
		"Whether a client may connect with an empty client id and be given one by the server."},
	{"mqtt", "default_vhost", func(c *Config) any { return &c.MQTT.DefaultVhost }, nonEmpty,
		"Vhost of a user name without a vhost: prefix."},
	{"mqtt", "permission_check_enabled", func(c *Config) any { return &c.MQTT.PermissionCheckEnabled }, nil,
		"Publishing needs write on mqtt.default; subscribing needs read on mqtt.default and write on mqtt.<client_id>."},
	{"mqtt", "allow_anonymous", func(c *Config) any { return &c.MQTT.AllowAnonymous }, nil,
		"Whether a CONNECT without a user name is accepted, acting as anonymous_user."},
	{"mqtt", "anonymous_user", func(c *Config) any { return &c.MQTT.AnonymousUser }, nonEmpty,
		"The user whose permissions anonymous clients get."},
	{"mqtt", "tls_port", func(c *Config) any { return &c.MQTT.TLSPort }, intRange(-1, 65535),
		"Port of MQTT over TLS, served when [main] tls_cert is set; 0 or -1 disables it."},
	{"mqtt", "tls_bind", func(c *Config) any { return &c.MQTT.TLSBind }, optional(bindAddr),
		"Address of the MQTT over TLS listener; empty uses [mqtt] bind."},
	{"mqtt", "ws_port", func(c *Config) any { return &c.MQTT.WSPort }, intRange(-1, 65535),
		"Port of MQTT over WebSocket (path /mqtt, subprotocol mqtt or mqttv3.1), usually 8083; 0 or -1 (the default) disables it."},
	{"mqtt", "ws_bind", func(c *Config) any { return &c.MQTT.WSBind }, optional(bindAddr),
		"Address of the WebSocket listener; empty uses [mqtt] bind."},
	{"mqtt", "wss_port", func(c *Config) any { return &c.MQTT.WSSPort }, intRange(-1, 65535),
		"Port of MQTT over secure WebSocket, served when [main] tls_cert is set; 0 or -1 disables it."},
	{"mqtt", "wss_bind", func(c *Config) any { return &c.MQTT.WSSBind }, optional(bindAddr),
		"Address of the secure WebSocket listener; empty uses [mqtt] bind."},
	{"mqtt", "unix_path", func(c *Config) any { return &c.MQTT.UnixPath }, nil,
		"Path of a unix socket listener; empty disables it."},
	{"mqtt", "tls_verify_peer", func(c *Config) any { return &c.MQTT.TLSVerifyPeer }, nil,
		"Require a client certificate signed by [main] tls_ca_cert on the TLS listeners."},
	{"mqtt", "tls_cert_login", func(c *Config) any { return &c.MQTT.TLSCertLogin }, nil,
		"Log in with the verified client certificate's Common Name as the user name, as RabbitMQ's EXTERNAL."},
	{"mqtt", "max_connections", func(c *Config) any { return &c.MQTT.MaxConnections }, intRange(0, math.MaxInt),
		"Connected clients of every vhost together; a CONNECT beyond it is refused with 0x97 (3.1.1: return code 3). 0 means no limit."},
	{"mqtt", "max_subscriptions_per_client", func(c *Config) any { return &c.MQTT.MaxSubscriptionsPerClient }, intRange(0, math.MaxInt),
		"Subscriptions one session may hold; a further filter gets SUBACK 0x97 (3.1.1: 0x80). 0 means no limit."},
	{"mqtt", "max_sessions_per_vhost", func(c *Config) any { return &c.MQTT.MaxSessionsPerVhost }, intRange(0, math.MaxInt),
		"Sessions, connected or not, of a vhost without its own max-sessions limit; a CONNECT that would create one more is refused with 0x97. 0 means no limit."},
	{"mqtt", "max_retained_per_vhost", func(c *Config) any { return &c.MQTT.MaxRetainedPerVhost }, intRange(0, math.MaxInt),
		"Retained messages of a vhost without its own max-retained limit; a retained PUBLISH to a further topic is refused (v5 0x97). 0 means no limit."},
	{"mqtt", "max_connect_rate", func(c *Config) any { return &c.MQTT.MaxConnectRate }, intRange(0, math.MaxInt32),
		"CONNECTs per second one source address (IPv4 address, IPv6 /64) may make, once its burst is spent; beyond it CONNACK 0x9F (3.1.1: return code 3). 0 turns it off."},
	{"mqtt", "max_connect_burst", func(c *Config) any { return &c.MQTT.MaxConnectBurst }, intRange(1, math.MaxInt32),
		"CONNECTs one source address may make at once before max_connect_rate applies."},
	{"mqtt", "connect_rate_exempt_loopback", func(c *Config) any { return &c.MQTT.ConnectRateExemptLoopback }, nil,
		"Whether loopback addresses are exempt from max_connect_rate (a local proxy's clients all come from one); unix sockets always are."},

	{"mgmt", "bind", func(c *Config) any { return &c.Mgmt.Bind }, bindAddr,
		"Address the HTTP management API binds to: an IP address or localhost; 0.0.0.0 or :: for every interface."},
	{"mgmt", "port", func(c *Config) any { return &c.Mgmt.Port }, intRange(-1, 65535),
		"TCP port of the HTTP management API; 0 or -1 disables it."},
	{"mgmt", "tls_port", func(c *Config) any { return &c.Mgmt.TLSPort }, intRange(-1, 65535),
		"Port of the management API over HTTPS, served when [main] tls_cert is set; 0 or -1 disables it."},
	{"mgmt", "allowed_hosts", func(c *Config) any { return &c.Mgmt.AllowedHosts }, hostList,
		"Comma-separated host names the API answers to (Host header) besides IP addresses, localhost and this machine's name; *.example.com matches subdomains, * any host."},
}

// KeyDoc describes one configuration key, for generated documentation.
type KeyDoc struct {
	Section string // e.g. "mqtt"
	Key     string // e.g. "max_packet_size"
	// Default is the default as it would be written in the file, e.g. "268435455"; when
	// Literal is false it describes a default that depends on the environment instead.
	Default string
	Literal bool
	// Example is a value to show in a sample file when Literal is false.
	Example     string
	Description string
}

// envDefaults are the keys whose default depends on the environment: how the documentation
// states the default, and an example value for the sample file.
var envDefaults = map[string]struct{ doc, example string }{
	lineKey("main", "data_dir"): {defaultDataDirDoc, "/var/lib/turnstile"},
}

// Keys lists every configuration key in file order: [main], [mqtt], [mgmt].
func Keys() []KeyDoc {
	def := Default()
	out := make([]KeyDoc, len(keys))
	for i, k := range keys {
		d := KeyDoc{Section: k.section, Key: k.name, Default: format(k.field(def)), Literal: true, Description: k.doc}
		if e, ok := envDefaults[lineKey(k.section, k.name)]; ok {
			d.Default, d.Literal, d.Example = e.doc, false, e.example
		}
		out[i] = d
	}
	return out
}

// sections lists the known section names in file order.
func sections() []string {
	var out []string
	for _, k := range keys {
		if !slices.Contains(out, k.section) {
			out = append(out, k.section)
		}
	}
	return out
}

func lookup(section, name string) *key {
	for i := range keys {
		if keys[i].section == section && keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// set decodes raw into the field dst points to. Its error is the message after "[section] key: ".
func set(dst any, raw string) error {
	switch p := dst.(type) {
	case *string:
		*p = raw
	case *int:
		n, err := parseInt(raw, strconv.IntSize)
		if err != nil {
			return err
		}
		*p = int(n)
	case *int64:
		n, err := parseInt(raw, 64)
		if err != nil {
			return err
		}
		*p = n
	case *bool:
		b, ok := parseBool(raw)
		if !ok {
			return fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", raw)
		}
		*p = b
	case *time.Duration:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return fmt.Errorf("%q is not a whole number of seconds", raw)
		}
		*p = time.Duration(n) * time.Second
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", dst))
	}
	return nil
}

func parseInt(raw string, bits int) (int64, error) {
	n, err := strconv.ParseInt(raw, 10, bits)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("%q is too large for an integer", raw)
		}
		return 0, fmt.Errorf("%q is not an integer", raw)
	}
	return n, nil
}

func parseBool(raw string) (value, ok bool) {
	switch strings.ToLower(raw) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// format writes the field dst points to as it would appear in a file.
func format(dst any) string {
	switch p := dst.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return strconv.FormatInt(int64(*p/time.Second), 10)
	}
	panic(fmt.Sprintf("config: unsupported field type %T", dst))
}

// intRange accepts *int and *int64 fields holding lo..hi inclusive.
func intRange(lo, hi int64) func(any) error {
	return func(v any) error {
		var n int64
		switch p := v.(type) {
		case *int:
			n = int64(*p)
		case *int64:
			n = *p
		default:
			panic(fmt.Sprintf("config: intRange on %T", v))
		}
		if n >= lo && n <= hi {
			return nil
		}
		if hi == math.MaxInt64 || (strconv.IntSize == 64 && hi == math.MaxInt) {
			return fmt.Errorf("%d is too small, the minimum is %d", n, lo)
		}
		return fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
}

// durationAtLeast accepts *time.Duration fields of at least lo.
func durationAtLeast(lo time.Duration) func(any) error {
	return func(v any) error {
		d := *v.(*time.Duration)
		if d < lo {
			return fmt.Errorf("%s is too small, the minimum is %s", seconds(d), seconds(lo))
		}
		return nil
	}
}

// seconds writes d as the file does when it is whole seconds, as a Go duration otherwise.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}

// oneOf accepts *string fields holding one of the given words, exactly.
func nonEmpty(v any) error {
	if *v.(*string) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

// backendList checks a comma-separated list of known authentication providers.
func backendList(v any) error {
	s := *v.(*string)
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must name at least one provider")
	}
	for _, name := range strings.Split(s, ",") {
		if n := strings.TrimSpace(name); n != "local" && n != "oauth" {
			return fmt.Errorf("unknown authentication provider %q (known: local, oauth)", n)
		}
	}
	return nil
}

func oneOf(words ...string) func(any) error {
	return func(v any) error {
		s := *v.(*string)
		if slices.Contains(words, s) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(words, ", "))
	}
}

// optional accepts the empty string and whatever check accepts.
func optional(check func(any) error) func(any) error {
	return func(v any) error {
		if *v.(*string) == "" {
			return nil
		}
		return check(v)
	}
}

// bindAddr accepts *string fields holding an IP address (v4 or v6, zone allowed) or "localhost".
func bindAddr(v any) error {
	s := *v.(*string)
	if s == "localhost" {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%q is not an IP address or \"localhost\"", s)
	}
	return nil
}
