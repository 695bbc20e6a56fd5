// Package ban owns the banned list: entries that refuse clients by client id, by user name, by
// source address or by a CIDR range of source addresses, each until an expiry (EMQX's banned
// list is the model: "as" clientid, username, peerhost or peerhost_net, "who", "by", "reason",
// "at" and "until").
//
// It answers one question on the hot path, [List.Match]: is a client with this client id, user
// name and address banned at this instant? The answer reads an immutable snapshot behind an
// atomic pointer (package expiring's Set: copy on write under a mutex): two map lookups and a
// scan of the CIDR entries; an empty list costs one atomic load. [List.Revoked] asks the same of
// an identity, for the broker's Standing check when a will is sent. The list persists in
// store.Records (namespace "bans") and works in memory without a store; entries leave once past
// their Until.
//
// It decides nothing about connections: the broker asks Match at CONNECT, and [List.OnBan] hooks
// (the broker's) disconnect the matching clients with DISCONNECT 0x98 and suppress their wills.
package ban
