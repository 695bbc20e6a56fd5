package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Config is the whole of Turnstile's configuration. Load and Parse return one that has been decoded
// over Default() and validated; a Config built in code should be checked with Validate.
type Config struct {
	Main   Main
	MQTT   MQTT
	Mgmt   Mgmt
	OAuth  OAuth
	Tokens Tokens

	// Source is the file the configuration was read from, "" for the embedded defaults.
	Source string

	// lines maps section and key to the line that set it, so that Validate can point at the file.
	lines map[string]int
	// dataDirErr is why Default() found no default data directory (see DefaultDataDir); Check
	// reports it when data_dir is still unset.
	dataDirErr error
}

// Main is the [main] section: process-wide settings.
type Main struct {
	LogLevel      string // log_level: debug, info, warn or error
	LogFormat     string // log_format: text or json
	LogFile       string // log_file: append log records to this file; "" writes them to stderr
	AuditLog      string // audit_log: append audit records (JSON lines) to this file; "" is off
	DataDir       string // data_dir: directory of the embedded store; "" keeps all state in memory
	Fsync         string // fsync: always or interval
	FsyncInterval int    // fsync_interval: milliseconds between WAL syncs when fsync = interval

	AuthBackends            string // auth_backends: ordered, comma-separated providers
	DefaultUser             string // default_user
	DefaultPassword         string // default_password (plaintext; hashed at start)
	AuthKeyFile             string // auth_key_file: key of the password verifiers, outside the store
	DefaultUserOnlyLoopback bool   // default_user_only_loopback
	DefinitionsFile         string // definitions_file: RabbitMQ definitions JSON loaded at start
	TLSCert                 string // tls_cert: PEM certificate chain for every TLS listener
	TLSKey                  string // tls_key
	TLSCACert               string // tls_ca_cert: CA bundle verifying client certificates
	TLSMinVersion           string // tls_min_version: 1.2 or 1.3
}

// MQTT is the [mqtt] section: the MQTT listener and the per-session limits.
type MQTT struct {
	Bind                    string        // bind: an IP address or "localhost"
	Port                    int           // port: -1..65535; <= 0 disables the TCP listener
	MaxInflightMessages     int           // max_inflight_messages: outbound unacknowledged QoS 1/2 per session
	MaxPacketSize           int           // max_packet_size: bytes, whole packet
	MaxConnectSize          int           // max_connect_size: bytes, a CONNECT before login
	MaxKeepalive            int           // max_keepalive: seconds; 0 = no cap
	ReceiveMaximum          int           // receive_maximum: inbound QoS 1/2 in flight per client (v5 Receive Maximum)
	MaxQueuedMessages       int           // max_queued_messages: per-session outbound queue, messages
	MaxQueuedBytes          int64         // max_queued_bytes: per-session outbound queue, bytes
	MaxTopicAlias           int           // max_topic_alias: v5 Topic Alias Maximum accepted from clients; 0 = none
	SysInterval             time.Duration // sys_interval: whole seconds in the file; 0 disables $SYS
	MaxSessionExpiry        int64         // max_session_expiry: seconds; 0 = no cap
	RetainAvailable         bool          // retain_available
	AllowZeroLengthClientID bool          // allow_zero_length_clientid

	DefaultVhost           string // default_vhost: vhost of a user name without a "vhost:" prefix
	PermissionCheckEnabled bool   // permission_check_enabled: LavinMQ's exchange/queue permission checks
	AllowAnonymous         bool   // allow_anonymous: CONNECT without a user name acts as AnonymousUser
	AnonymousUser          string // anonymous_user
	TLSPort                int    // tls_port: MQTT over TLS, when [main] tls_cert is set
	TLSBind                string // tls_bind: address of the TLS listener; "" means Bind
	WSPort                 int    // ws_port: MQTT over WebSocket, path /mqtt; off by default
	WSBind                 string // ws_bind: address of the WebSocket listener; "" means Bind
	WSSPort                int    // wss_port: MQTT over WebSocket with TLS, when [main] tls_cert is set
	WSSBind                string // wss_bind: address of the secure WebSocket listener; "" means Bind
	UnixPath               string // unix_path: unix socket listener when non-empty
	TLSVerifyPeer          bool   // tls_verify_peer: require a client certificate signed by [main] tls_ca_cert
	TLSCertLogin           bool   // tls_cert_login: the client certificate's CN is the user name

	WillOnReauthFailure   string // will_on_reauth_failure: publish or suppress
	ExpiryAction          string // expiry_action: disconnect or deny_only
	ExpiryReason          string // expiry_reason: maximum_connect_time or not_authorized
	TokenUploadsPerMinute int    // token_uploads_per_minute
	// Limits (docs/security.md, "Limits"); 0 is no limit.
	MaxConnections            int  // max_connections: connected clients, every vhost together
	MaxSubscriptionsPerClient int  // max_subscriptions_per_client
	MaxSessionsPerVhost       int  // max_sessions_per_vhost: max-sessions of a vhost without its own
	MaxRetainedPerVhost       int  // max_retained_per_vhost: max-retained of a vhost without its own
	MaxConnectRate            int  // max_connect_rate: CONNECTs per second per source address
	MaxConnectBurst           int  // max_connect_burst: CONNECTs a source may make at once
	ConnectRateExemptLoopback bool // connect_rate_exempt_loopback
}

// Mgmt is the [mgmt] section: the HTTP management API.
type Mgmt struct {
	Bind    string // bind: an IP address or "localhost"
	Port    int    // port: -1..65535; <= 0 disables the HTTP listener
	TLSPort int    // [mgmt] tls_port: HTTPS, when [main] tls_cert is set
	// AllowedHosts is [mgmt] allowed_hosts: comma-separated host names the API answers to besides
	// its defaults (DNS-rebinding protection; docs/security.md).
	AllowedHosts string
}

// Default returns the configuration used when no file is given; Load and Parse decode over it.
// Its data directory is DefaultDataDir's, read from the environment at each call.
func Default() *Config {
	dataDir, dataDirErr := DefaultDataDir()
	c := &Config{
		dataDirErr: dataDirErr,
		Main: Main{
			LogLevel:      "info",
			LogFormat:     "text",
			DataDir:       dataDir,
			Fsync:         "always",
			FsyncInterval: 100,

			AuthBackends:            "local",
			DefaultUser:             "guest",
			DefaultPassword:         "guest",
			DefaultUserOnlyLoopback: true,
			TLSMinVersion:           "1.2",
		},
		MQTT: MQTT{
			Bind:                    "127.0.0.1",
			Port:                    1883,
			MaxInflightMessages:     65535,
			MaxPacketSize:           1 << 20, // EMQX's default; a larger one must fit max_queued_bytes
			MaxConnectSize:          64 << 10,
			MaxKeepalive:            0,
			ReceiveMaximum:          1024,
			MaxQueuedMessages:       1000,
			MaxQueuedBytes:          16 << 20,
			MaxTopicAlias:           1024,
			SysInterval:             10 * time.Second,
			MaxSessionExpiry:        0,
			RetainAvailable:         true,
			AllowZeroLengthClientID: true,
			DefaultVhost:            "/",
			AnonymousUser:           "anonymous",
			TLSPort:                 8883,
			WSPort:                  0, // opt-in: 8083 is the usual port, and other software uses it too
			WSSPort:                 8084,

			MaxConnections:            100000,
			MaxSubscriptionsPerClient: 10000,
			MaxSessionsPerVhost:       200000,
			MaxRetainedPerVhost:       1000000,
			MaxConnectRate:            100,
			MaxConnectBurst:           1000,
			ConnectRateExemptLoopback: true,
		},
		Mgmt: Mgmt{
			Bind:    "127.0.0.1",
			Port:    15672,
			TLSPort: 15671,
		},
	}
	credentialDefaults(c)
	return c
}

// Load reads the INI file at path, decodes it over Default() and validates the result. On failure
// the error joins every problem found (see Error); the returned Config is then nil.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse is Load for a file already in memory; name is used as Source and in error messages.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	c.Source = name
	c.lines = make(map[string]int)
	errs := decode(c, name, data)
	errs = append(errs, c.validate()...)
	if len(errs) == 0 {
		return c, nil
	}
	// Report in file order; problems without a line (there are none today) go last.
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(sortLine(a.Line), sortLine(b.Line))
	})
	return nil, joinErrors(errs)
}

// Validate checks every value against its allowed range. The error joins one *Error per bad key; each
// names the section and key, and the file and line when the value came from a file.
func (c *Config) Validate() error {
	return joinErrors(c.validate())
}

func (c *Config) validate() []*Error {
	var errs []*Error
	for i := range keys {
		k := &keys[i]
		if k.check == nil {
			continue
		}
		if err := k.check(k.field(c)); err != nil {
			e := &Error{Section: k.section, Key: k.name, Msg: err.Error()}
			// Point at the file only when the value came from it, not when it was set in code.
			if line := c.lines[lineKey(k.section, k.name)]; line > 0 {
				e.File, e.Line = c.Source, line
			}
			errs = append(errs, e)
		}
	}
	if m := &c.MQTT; len(errs) == 0 && int64(m.MaxPacketSize) > m.MaxQueuedBytes {
		// A message larger than a session's whole queue could be accepted but never delivered.
		e := &Error{Section: "mqtt", Key: "max_packet_size", Msg: fmt.Sprintf(
			"%d is above max_queued_bytes (%d): a message that large could never be delivered", m.MaxPacketSize, m.MaxQueuedBytes)}
		line := c.lines[lineKey("mqtt", "max_packet_size")]
		if line == 0 {
			line = c.lines[lineKey("mqtt", "max_queued_bytes")]
		}
		if line > 0 {
			e.File, e.Line = c.Source, line
		}
		errs = append(errs, e)
	}
	return errs
}

func lineKey(section, key string) string { return section + "\x00" + key }

func sortLine(n int) int {
	if n <= 0 {
		return int(^uint(0) >> 1)
	}
	return n
}

func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}
