// Package tokensign computes the request signatures of Turnstile's token API, which are those of
// Alibaba Cloud's MQTT token API (see docs/tokens.md):
//
//   - the RPC form (SignatureVersion 1.0): the parameters but Signature, sorted by name and
//     percent-encoded per RFC 3986, joined with '&'; StringToSign = method + "&%2F&" + the
//     encoded canonical query; Signature = Base64(HMAC(AccessKeySecret + "&", StringToSign))
//     with SHA-1 ("HMAC-SHA1") or SHA-256 ("HMAC-SHA256");
//   - the legacy form (/token/apply, /token/query, /token/revoke): "key=value" pairs sorted by
//     key, a key's several values sorted and joined by ',', pairs joined by '&', no encoding;
//     Signature = Base64(HMAC-SHA1(AccessKeySecret, that string));
//   - the MQTT Signature-mode password: Base64(HMAC-SHA1(AccessKeySecret, ClientId)).
//
// It is pure: no network, no clock, no state. Both the server (internal/tokens) and the client
// (pkg/tokenclient) use it, so the two can never disagree. It must not import anything under
// internal/: it is importable by other modules.
package tokensign
