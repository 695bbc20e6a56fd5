package config

import (
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// OAuth is the [oauth] section: OAuth2 / OpenID Connect JWT login, with LavinMQ's key names
// (so its configuration files carry over) and Turnstile's additions. It is used when
// [main] auth_backends lists oauth.
type OAuth struct {
	Issuer                  string        // issuer: OIDC discovery at <issuer>/.well-known/openid-configuration
	ResourceServerID        string        // resource_server_id
	PreferredUsernameClaims string        // preferred_username_claims: comma-separated
	AdditionalScopesKeys    string        // additional_scopes_keys: comma-separated claim names
	ScopePrefix             string        // scope_prefix; absent: "<resource_server_id>."
	VerifyAud               bool          // verify_aud
	Audience                string        // audience
	JWKSCacheTTL            time.Duration // jwks_cache_ttl: whole seconds
	JWKSURL                 string        // jwks_url: instead of discovery
	JWKSFile                string        // jwks_file: instead of discovery
	Leeway                  time.Duration // leeway: clock skew allowed, everywhere a credential expires
	Algorithms              string        // algorithms: comma-separated allow-list
	AuthMethods             string        // auth_methods: MQTT 5 Authentication Methods carrying a JWT
	MaxTokenLifetime        time.Duration // max_token_lifetime: how long a revocation is kept when the token's exp is unknown
}

// Tokens is the [tokens] section: the Alibaba-compatible token service (docs/tokens.md). It is
// served, and token and signature logins are accepted, when port or tls_port is above 0.
type Tokens struct {
	Bind              string        // bind
	Port              int           // port: HTTP API; <= 0 off
	TLSPort           int           // tls_port: HTTPS API with [main] tls_cert; <= 0 off
	KeyFile           string        // key_file: the master key, outside the store
	MaxLifetime       time.Duration // max_lifetime: cap on a token's ExpireTime
	RejectLongExpiry  bool          // reject_long_expiry: refuse instead of capping
	LegacyAPI         bool          // legacy_api: the unsigned-timestamp /token/* form API
	NoticeLead        time.Duration // notice_lead: $SYS/tokenExpireNotice before expiry
	SubscribedNotices string        // subscribed_notices: MQTT listeners in subscribed notice mode
}

// Enabled reports whether the token service runs.
func (t *Tokens) Enabled() bool { return t.Port > 0 || t.TLSPort > 0 }

// TokenKeyFile is the master key file of the token service: [tokens] key_file, or a file beside
// the data directory (never inside the store it protects); "" when state lives in memory.
func (c *Config) TokenKeyFile() string {
	if c.Tokens.KeyFile != "" {
		return c.Tokens.KeyFile
	}
	if c.Main.DataDir == "" {
		return ""
	}
	return filepath.Clean(c.Main.DataDir) + ".tokens.key"
}

// PasswordKeyFile is the key file of the password verifiers: [main] auth_key_file, or a file
// beside the data directory (never inside the store whose verifiers it keys); "" when state lives
// in memory (the key is then drawn per process).
func (c *Config) PasswordKeyFile() string {
	if c.Main.AuthKeyFile != "" {
		return c.Main.AuthKeyFile
	}
	if c.Main.DataDir == "" {
		return ""
	}
	return filepath.Clean(c.Main.DataDir) + ".auth.key"
}

// OAuthScopePrefix is [oauth] scope_prefix, nil when the key is absent (LavinMQ's default: the
// resource server id and a dot).
func (c *Config) OAuthScopePrefix() *string {
	if c.lines[lineKey("oauth", "scope_prefix")] == 0 && c.OAuth.ScopePrefix == "" {
		return nil
	}
	p := c.OAuth.ScopePrefix
	return &p
}

// UsesOAuth reports whether [main] auth_backends lists oauth.
func (c *Config) UsesOAuth() bool { return listHas(c.Main.AuthBackends, "oauth") }

// List splits a comma-separated value into its trimmed, non-empty items.
func List(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func listHas(s, want string) bool {
	for _, item := range List(s) {
		if item == want {
			return true
		}
	}
	return false
}

// credentialKeys are the keys of the credential lifecycle: [oauth], [tokens] and the [mqtt]
// keys of expiry and re-authentication.
var credentialKeys = []key{
	{"mqtt", "will_on_reauth_failure", func(c *Config) any { return &c.MQTT.WillOnReauthFailure }, oneOf("publish", "suppress"),
		"What becomes of the will of a connection closed for a failed re-authentication or token upload: publish (under the old credential, valid when the will was earned) or suppress."},
	{"mqtt", "expiry_action", func(c *Config) any { return &c.MQTT.ExpiryAction }, oneOf("disconnect", "deny_only"),
		"At a credential's expiry: disconnect (DISCONNECT 0xA0, the will is published), or deny_only (the client stays connected and every action is refused)."},
	{"mqtt", "expiry_reason", func(c *Config) any { return &c.MQTT.ExpiryReason }, oneOf("maximum_connect_time", "not_authorized"),
		"DISCONNECT reason at expiry: maximum_connect_time (0xA0) or not_authorized (0x87, as EMQX sends)."},
	{"mqtt", "token_uploads_per_minute", func(c *Config) any { return &c.MQTT.TokenUploadsPerMinute }, intRange(1, 600),
		"Token uploads ($SYS/uploadToken) a connection may make per minute; more closes it."},

	{"oauth", "issuer", func(c *Config) any { return &c.OAuth.Issuer }, nil,
		"OpenID Connect issuer; its discovery document names the JWKS. http:// only on a loopback host."},
	{"oauth", "resource_server_id", func(c *Config) any { return &c.OAuth.ResourceServerID }, nil,
		"This broker's resource server id: the default audience and scope prefix, and the key of resource_access roles."},
	{"oauth", "preferred_username_claims", func(c *Config) any { return &c.OAuth.PreferredUsernameClaims }, nil,
		"Comma-separated claims tried in order for the user name of an OAuth login."},
	{"oauth", "additional_scopes_keys", func(c *Config) any { return &c.OAuth.AdditionalScopesKeys }, nil,
		"Comma-separated claims read for scopes besides scope and resource_access (roles, scp, permissions...)."},
	{"oauth", "scope_prefix", func(c *Config) any { return &c.OAuth.ScopePrefix }, nil,
		"Prefix a scope must carry to count (stripped); absent: resource_server_id followed by a dot."},
	{"oauth", "verify_aud", func(c *Config) any { return &c.OAuth.VerifyAud }, nil,
		"Whether a token's aud must contain audience (or resource_server_id)."},
	{"oauth", "audience", func(c *Config) any { return &c.OAuth.Audience }, nil,
		"Audience a token must name when verify_aud is true; empty uses resource_server_id."},
	{"oauth", "jwks_cache_ttl", func(c *Config) any { return &c.OAuth.JWKSCacheTTL }, durationAtLeast(0),
		"Seconds the signing keys are cached; a Cache-Control max-age overrides it."},
	{"oauth", "jwks_url", func(c *Config) any { return &c.OAuth.JWKSURL }, nil,
		"JWKS URL used instead of discovery."},
	{"oauth", "jwks_file", func(c *Config) any { return &c.OAuth.JWKSFile }, nil,
		"JWKS file used instead of discovery."},
	{"oauth", "leeway", func(c *Config) any { return &c.OAuth.Leeway }, durationAtLeast(0),
		"Seconds of clock skew allowed on exp, nbf and iat, and on every credential's expiry on a live connection."},
	{"oauth", "algorithms", func(c *Config) any { return &c.OAuth.Algorithms }, nonEmpty,
		"Comma-separated signature algorithms accepted; never none."},
	{"oauth", "auth_methods", func(c *Config) any { return &c.OAuth.AuthMethods }, nonEmpty,
		"Comma-separated MQTT 5 Authentication Methods whose Authentication Data is a JWT (CONNECT and AUTH re-authentication)."},
	{"oauth", "max_token_lifetime", func(c *Config) any { return &c.OAuth.MaxTokenLifetime }, durationAtLeast(time.Minute),
		"Seconds a revocation is kept when the revoked token's own expiry is unknown (revocations by subject or key id)."},

	{"tokens", "bind", func(c *Config) any { return &c.Tokens.Bind }, bindAddr,
		"Address the token service API binds to."},
	{"tokens", "port", func(c *Config) any { return &c.Tokens.Port }, intRange(-1, 65535),
		"Port of the token service API (HTTP); 0 or -1 disables it. With port or tls_port set, token and signature logins are accepted."},
	{"tokens", "tls_port", func(c *Config) any { return &c.Tokens.TLSPort }, intRange(-1, 65535),
		"Port of the token service API over HTTPS with [main] tls_cert; 0 or -1 disables it."},
	{"tokens", "key_file", func(c *Config) any { return &c.Tokens.KeyFile }, nil,
		"Master key file encrypting signing keys and AccessKey secrets at rest, kept outside the store; empty: beside data_dir, as <data_dir>.tokens.key."},
	{"tokens", "max_lifetime", func(c *Config) any { return &c.Tokens.MaxLifetime }, durationAtLeast(time.Minute),
		"Seconds a token may live at most; a longer ExpireTime is capped (Alibaba: 30 days)."},
	{"tokens", "reject_long_expiry", func(c *Config) any { return &c.Tokens.RejectLongExpiry }, nil,
		"Refuse an ExpireTime beyond max_lifetime instead of capping it."},
	{"tokens", "legacy_api", func(c *Config) any { return &c.Tokens.LegacyAPI }, nil,
		"Serve Alibaba's legacy /token/apply, /token/query and /token/revoke form API (no timestamp or nonce: replayable)."},
	{"tokens", "notice_lead", func(c *Config) any { return &c.Tokens.NoticeLead }, durationAtLeast(0),
		"Seconds before a token expires that $SYS/tokenExpireNotice is sent (clamped to half its lifetime)."},
	{"tokens", "subscribed_notices", func(c *Config) any { return &c.Tokens.SubscribedNotices }, nil,
		"Comma-separated MQTT listeners (tcp, tls, ws, wss, unix) that send token notices only to clients subscribed to them; the others push them (Alibaba)."},
}

// init adds the credential keys to the key table, each after the last key of its section, so
// that the table stays in file order.
func init() {
	for _, k := range credentialKeys {
		at := len(keys)
		for i := len(keys) - 1; i >= 0; i-- {
			if keys[i].section == k.section {
				at = i + 1
				break
			}
		}
		keys = slices.Insert(keys, at, k)
	}
}

// credentialDefaults fills the defaults of the credential keys.
func credentialDefaults(c *Config) {
	c.MQTT.WillOnReauthFailure = "publish"
	c.MQTT.ExpiryAction = "disconnect"
	c.MQTT.ExpiryReason = "maximum_connect_time"
	c.MQTT.TokenUploadsPerMinute = 6
	c.OAuth = OAuth{PreferredUsernameClaims: "sub,client_id", VerifyAud: true, JWKSCacheTTL: time.Hour,
		Leeway: 30 * time.Second, Algorithms: "RS256,RS384,RS512,PS256,ES256,ES384,EdDSA", AuthMethods: "jwt",
		MaxTokenLifetime: 24 * time.Hour}
	c.Tokens = Tokens{Bind: "127.0.0.1", MaxLifetime: 30 * 24 * time.Hour, NoticeLead: 5 * time.Minute}
}

// checkCredentials is the part of Check about [oauth] and [tokens].
func (c *Config) checkCredentials(add func(section, key, format string, args ...any)) {
	if c.UsesOAuth() && c.OAuth.Issuer == "" && c.OAuth.JWKSURL == "" && c.OAuth.JWKSFile == "" {
		add("main", "auth_backends", "lists oauth, but [oauth] has no issuer, jwks_url or jwks_file")
	}
	for _, name := range List(c.Tokens.SubscribedNotices) {
		switch name {
		case "tcp", "tls", "ws", "wss", "unix":
		default:
			add("tokens", "subscribed_notices", "%q is not an MQTT listener (tcp, tls, ws, wss, unix)", name)
		}
	}
	if c.Tokens.TLSPort > 0 && c.Main.TLSCert == "" {
		add("tokens", "tls_port", "set without [main] tls_cert")
	}
}
