// Package auth owns authentication: the ordered chain of providers that turns CONNECT
// credentials into an immutable Identity, and the local user database with its password hashes.
//
// It decides who a client is, never what it may do: authorization belongs to package acl, which
// reads the Identity. It must not import the broker, and it never logs a password, a hash or a
// token. Sub-packages hold providers that need more than the standard library (OAuth2, tokens).
package auth
