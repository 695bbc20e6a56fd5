// Package tokens is Turnstile's token service, compatible with Alibaba Cloud's MQTT token mode
// (shared/reference/tokens.md; docs/tokens.md):
//
//   - AccessKeys, each bound to one vhost and one owning user, with secrets encrypted at rest
//     under a master key kept outside the store (accesskeys.go, masterkey.go);
//   - self-verifying tokens: compact JWS signed with Ed25519 (EdDSA), the signing key named by
//     "kid" in the header, several keys live at once so keys rotate without invalidating tokens
//     (keyring.go, token.go);
//   - a revocation set keyed by jti, each entry kept until its token's exp (revoke.go), behind
//     the small Revoker interface so that another implementation can replace it;
//   - the core operations the API, the management API and tests call (service.go);
//   - the HTTP API for application servers: the RPC form at "/" (ApplyToken, QueryToken,
//     RevokeToken, version 2020-04-20) and the legacy form at /token/* (api.go, legacy.go),
//     with request signatures (pkg/tokensign), a timestamp window, a nonce replay cache and
//     per-AccessKey rate limits (guard.go);
//   - the MQTT login as the auth.Provider "token" (provider.go) and the verification of a
//     $SYS/uploadToken payload with the notice payloads (upload.go).
//
// It decides and answers; it never touches a connection: the broker integrates the login, the
// $SYS topics, the notices and disconnections on top of this API. It must not import the broker,
// the management API or the configuration. It never stores or logs a raw token or secret: only a
// token's SHA-256, jti, kid and exp.
package tokens
