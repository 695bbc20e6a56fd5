// Package oauth is the "oauth" link of the auth chain: it verifies an OAuth2 access token (a
// JWT) presented as the CONNECT password, or as MQTT 5 Authentication Data with the method
// "jwt", and turns its claims into an [auth.Identity] whose permissions come from the token's
// scopes (RabbitMQ's and LavinMQ's grammar, see scopes.go).
//
// It owns the signing keys: OIDC discovery (<issuer>/.well-known/openid-configuration →
// jwks_uri) or a configured JWKS URL or file, a cache of keys by kid refreshed periodically, and
// one single-flight refresh, at most once per UnknownKidFloor, when a token names an unknown
// kid. A failed fetch never drops the cache: keys already known keep verifying while the
// identity provider is down. Parsing and signature verification are github.com/go-jose/go-jose;
// this package adds the key cache, the algorithm allow-list (never "none", never HMAC under an
// asymmetric key) and the claim checks, all with one leeway.
//
// It decides who the client is, never what it may do at each action (package acl reads
// Identity.Scoped), and never what happens to a live connection (the broker arms expiry timers
// and re-authenticates). It never logs, stores or returns a token: an identity keeps only its
// SHA-256, its jti and kid; errors say what failed, not what was presented.
package oauth
