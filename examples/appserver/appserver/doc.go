// Package appserver is an example application server of the token model (docs/tokens.md): a
// device proves itself with its own secret and names the topics it needs; the server checks its
// policy, applies for a token through pkg/tokenclient (or serves it from its cache, or, when the
// token service is down, the cached token still valid) and returns the token, its type and its
// expiry. An administrator can revoke a device's tokens, which cuts the device off.
//
// It is an example: its device registry is a map in its Config. It uses only pkg/ packages, as
// an application server in another module would.
package appserver
