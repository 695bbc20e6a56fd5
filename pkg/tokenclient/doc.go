// Package tokenclient is the Go client of Turnstile's token API for application servers (the
// Alibaba Cloud MQTT token model; docs/tokens.md):
//
//   - a client that signs ApplyToken, QueryToken and RevokeToken requests in the RPC form
//     (HMAC-SHA1 by default, HMAC-SHA256 optional) with an AccessKey pair;
//   - a token cache keyed by the permission set (sorted resources and actions), kept in memory
//     and, when configured, in a JSON file written atomically with mode 0600;
//   - Get, which serves a cached token while it is valid for longer than the refresh lead,
//     applies for a new one otherwise, and, when the token service cannot be reached, falls
//     back to the cached token that is still valid (Alibaba's "local disaster recovery").
//
// The cache file holds raw tokens: keep it where only the application server can read it. The
// package imports nothing under internal/, so other modules can use it.
package tokenclient
