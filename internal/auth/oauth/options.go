package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
)

// Defaults of the zero Options fields.
const (
	DefaultJWKSCacheTTL    = time.Hour
	DefaultLeeway          = 30 * time.Second
	DefaultUnknownKidFloor = 30 * time.Second
	DefaultMaxTokenSize    = 8 << 10
)

// Bounds on what configuration and the identity provider may ask for.
const (
	// MinJWKSRefresh and MaxJWKSRefresh bound the refresh interval, whether it comes from
	// JWKSCacheTTL or from a Cache-Control max-age of the JWKS response.
	MinJWKSRefresh = 30 * time.Second
	MaxJWKSRefresh = 24 * time.Hour
	// MaxLeeway bounds Leeway: clock skew is seconds, not hours.
	MaxLeeway = 10 * time.Minute
	// MaxMaxTokenSize bounds MaxTokenSize.
	MaxMaxTokenSize = 64 << 10
	// MinHMACSecret is the shortest shared secret accepted for HS256/384/512 (RFC 7518 3.2: a
	// key of at least the hash's size).
	MinHMACSecret = 32

	fetchTimeout     = 10 * time.Second // one discovery or JWKS request, connect to last byte
	maxDiscoveryBody = 256 << 10
	maxJWKSBody      = 1 << 20
	maxJWKSKeys      = 256
	minRSABits       = 2048
)

// DefaultAlgorithms is the allow-list when Options.Algorithms is empty: RS256, RS384, RS512,
// PS256, ES256, ES384 and EdDSA.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// supportedAlgorithms are the names Algorithms may hold. HS256/384/512 need HMACSecret.
var supportedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
	"HS256", "HS384", "HS512",
}

// Options configure a Provider. The lead maps the [oauth] INI keys onto them (issuer,
// resource_server_id, preferred_username_claims, additional_scopes_keys, scope_prefix,
// verify_aud, audience, jwks_cache_ttl, jwks_url, jwks_file, leeway, algorithms).
// [DefaultOptions] gives LavinMQ's defaults, verify_aud = true included; the zero value of a
// field means its default, except VerifyAud, whose zero value is false.
type Options struct {
	// Issuer is the expected iss (a trailing "/" is ignored on both sides) and, unless JWKSURL
	// or JWKSFile is set, the base of OIDC discovery. https, or http on a loopback host.
	Issuer string
	// ResourceServerID names this broker at the identity provider: the default scope prefix
	// ("<id>."), the key of resource_access and of object-shaped additional scope claims, and the
	// audience when Audience is empty.
	ResourceServerID string
	// PreferredUsernameClaims are tried in order for Identity.User; default sub, client_id.
	PreferredUsernameClaims []string
	// AdditionalScopesKeys name more claims holding scopes: a space-separated string, an array,
	// or an object keyed by ResourceServerID (every key when ResourceServerID is empty).
	AdditionalScopesKeys []string
	// ScopePrefix keeps only the scopes that start with it (and strips it). nil: LavinMQ's
	// default, "<ResourceServerID>." when that is set, else every scope as it is.
	ScopePrefix *string
	// VerifyAud requires aud to contain Audience, or ResourceServerID when Audience is empty;
	// with neither set every token is refused (LavinMQ).
	VerifyAud bool
	Audience  string
	// JWKSCacheTTL is how often the keys are fetched again; a Cache-Control max-age on the JWKS
	// response overrides it. Both are held within [MinJWKSRefresh, MaxJWKSRefresh]. 0: 1 h.
	JWKSCacheTTL time.Duration
	// JWKSURL (https, or http on loopback) or JWKSFile replaces discovery; at most one of them.
	JWKSURL  string
	JWKSFile string
	// Leeway is the clock skew allowed on exp, nbf and iat, and the one the broker adds to
	// expiry. 0: 30 s; negative: none.
	Leeway time.Duration
	// Algorithms is the allow-list of JWS algorithms; default DefaultAlgorithms. "none" is never
	// accepted; HS256/384/512 only with HMACSecret, and never under a kid that names a key of the
	// JWKS.
	Algorithms []string
	// HMACSecret is the shared secret for HS* tokens, at least MinHMACSecret bytes.
	HMACSecret []byte
	// UnknownKidFloor is the least time between two refreshes caused by an unknown kid. 0: 30 s.
	UnknownKidFloor time.Duration
	// MaxTokenSize caps a token, checked before it is parsed. 0: 8 KiB.
	MaxTokenSize int
	// HTTPClient fetches discovery and JWKS; nil: a client of this package's own. Every request
	// is bounded by a 10 s timeout and a body limit whatever the client.
	HTTPClient *http.Client
	// Clock is the time of the refresh loop and of Authenticate; nil: the system clock.
	Clock clock.Clock
	// Logger receives refresh failures and skipped keys, never a token; nil: slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with LavinMQ's defaults filled in, VerifyAud = true included.
func DefaultOptions() Options {
	return Options{
		PreferredUsernameClaims: []string{"sub", "client_id"},
		VerifyAud:               true,
		JWKSCacheTTL:            DefaultJWKSCacheTTL,
		Leeway:                  DefaultLeeway,
		Algorithms:              slices.Clone(DefaultAlgorithms),
		UnknownKidFloor:         DefaultUnknownKidFloor,
		MaxTokenSize:            DefaultMaxTokenSize,
	}
}

// ErrInvalidOptions is wrapped by every error of Validate and New.
var ErrInvalidOptions = errors.New("oauth: invalid options")

// Validate checks o and returns every problem found, each naming its field (the INI key).
func (o *Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...)))
	}
	if o.Issuer == "" {
		bad("issuer", "required")
	} else if err := checkURL(o.Issuer); err != nil {
		bad("issuer", "%v", err)
	}
	if o.JWKSURL != "" {
		if err := checkURL(o.JWKSURL); err != nil {
			bad("jwks_url", "%v", err)
		}
	}
	if o.JWKSURL != "" && o.JWKSFile != "" {
		bad("jwks_file", "set together with jwks_url: choose one")
	}
	for i, c := range o.PreferredUsernameClaims {
		if strings.TrimSpace(c) == "" {
			bad("preferred_username_claims", "entry %d is empty", i+1)
		}
	}
	for i, c := range o.AdditionalScopesKeys {
		if strings.TrimSpace(c) == "" {
			bad("additional_scopes_keys", "entry %d is empty", i+1)
		}
	}
	if o.JWKSCacheTTL < 0 {
		bad("jwks_cache_ttl", "negative (%s)", o.JWKSCacheTTL)
	}
	if o.Leeway > MaxLeeway {
		bad("leeway", "%s is more than %s", o.Leeway, MaxLeeway)
	}
	if o.UnknownKidFloor < 0 {
		bad("unknown_kid_floor", "negative (%s)", o.UnknownKidFloor)
	}
	if o.MaxTokenSize < 0 || o.MaxTokenSize > MaxMaxTokenSize {
		bad("max_token_size", "%d is outside 0..%d", o.MaxTokenSize, MaxMaxTokenSize)
	}
	if len(o.HMACSecret) > 0 && len(o.HMACSecret) < MinHMACSecret {
		bad("hmac_secret", "%d bytes, at least %d needed", len(o.HMACSecret), MinHMACSecret)
	}
	for _, a := range o.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			bad("algorithms", `"none" is never accepted`)
		case !slices.Contains(supportedAlgorithms, a):
			bad("algorithms", "unknown algorithm %q (supported: %s)", a, strings.Join(supportedAlgorithms, ", "))
		case strings.HasPrefix(a, "HS") && len(o.HMACSecret) == 0:
			bad("algorithms", "%s needs a shared secret (hmac_secret)", a)
		case a == "HS384" && len(o.HMACSecret) < 48, a == "HS512" && len(o.HMACSecret) < 64:
			bad("hmac_secret", "%d bytes are too few for %s (RFC 7518 3.2: at least the hash size)", len(o.HMACSecret), a)
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts an absolute https URL, or an http one whose host is loopback (127.0.0.0/8,
// ::1, localhost), so that tests and local identity providers work without TLS.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not allowed")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http is allowed only on a loopback host, %q is not: use https", u.Hostname())
	}
	return fmt.Errorf("scheme %q: https required", u.Scheme)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// withDefaults returns a copy of o with the zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if len(o.PreferredUsernameClaims) == 0 {
		o.PreferredUsernameClaims = []string{"sub", "client_id"}
	}
	o.PreferredUsernameClaims = slices.Clone(o.PreferredUsernameClaims)
	o.AdditionalScopesKeys = slices.Clone(o.AdditionalScopesKeys)
	if o.JWKSCacheTTL == 0 {
		o.JWKSCacheTTL = DefaultJWKSCacheTTL
	}
	o.JWKSCacheTTL = clampRefresh(o.JWKSCacheTTL)
	switch {
	case o.Leeway == 0:
		o.Leeway = DefaultLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = DefaultAlgorithms
	}
	o.Algorithms = slices.Compact(slices.Sorted(slices.Values(o.Algorithms)))
	if o.UnknownKidFloor == 0 {
		o.UnknownKidFloor = DefaultUnknownKidFloor
	}
	if o.MaxTokenSize == 0 {
		o.MaxTokenSize = DefaultMaxTokenSize
	}
	o.HMACSecret = slices.Clone(o.HMACSecret)
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Timeout: fetchTimeout,
			// A redirect is followed only to a URL that would be accepted as configured.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return checkURL(req.URL.String())
			},
		}
	}
	return o
}

func clampRefresh(d time.Duration) time.Duration {
	return min(max(d, MinJWKSRefresh), MaxJWKSRefresh)
}
