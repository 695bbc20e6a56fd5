// Package revoke owns credential revocations: a set of entries that revoke tokens by jti, by
// subject (sub, optionally of one issuer) or by signing key (kid), each in force until a time
// after which the credentials it covers have expired anyway (will-and-expiry.md §4, effect
// matrix: token revocation, subject disabled, key compromise).
//
// It answers one question on the hot path, [Set.Revoked]: is any credential of this identity
// revoked at this instant? The answer reads an immutable snapshot behind an atomic pointer
// (package expiring's Set: copy on write under a mutex), and an identity without credentials
// costs nothing. The set persists in store.Records (namespace "revocations") and works in memory
// without a store; entries are pruned once past their Until.
//
// It decides nothing about connections: the broker registers [Set.OnRevoke] and disconnects
// (DISCONNECT 0x98) and suppresses the wills of what matches. It stores ids, subjects and key
// ids, never a token.
package revoke
