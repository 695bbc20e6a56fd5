// Package acl owns authorization: the permission model and the per-action checks the broker
// consults for every PUBLISH (and will) and every SUBSCRIBE.
//
// Three layers, all of which must allow an action:
//
//   - Permissions, per (user, vhost): configure, write and read regexes with RabbitMQ semantics.
//     An entry for (user, vhost) is what lets a user connect to a vhost ([Checker.HasAccess]).
//     When the permission check is enabled, publishing needs write on "mqtt.default", and
//     subscribing needs read on "mqtt.default" and write on "mqtt.<client_id>", as LavinMQ does.
//   - Topic permissions, RabbitMQ's topic authorization applied to MQTT topics on the exchange
//     "mqtt.default": the write regex checks a PUBLISH topic, the read regex a SUBSCRIBE filter.
//     They apply whether or not the permission check is enabled.
//   - For an OAuth2 identity (GrantsSource auth.GrantsOAuth), the permissions and topic
//     rules its token's scopes give ([auth.ScopedPermissions]) take the place of the first two
//     layers: the stored permissions of its user name are never consulted.
//   - Credential grants ([auth.Grant]): when the identity carries grants (OAuth2 scopes, token
//     topics), a publish needs a write grant matching the topic and a subscribe a read grant
//     covering the filter.
//
// The package decides, it does not act: it never closes a connection, logs or counts a denial;
// the caller maps a [*Denial] to a reason code. It must not import the broker, the store or
// the network; it reads [auth.Identity] and uses package topic for MQTT matching.
//
// Reads are lock-free: the rules live in an immutable snapshot behind an atomic pointer, which
// each change replaces whole (copy on write, serialized by a mutex). Changes are rare; checks
// happen on every packet.
package acl
