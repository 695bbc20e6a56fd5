// Package topic owns the MQTT topic rules and the two indexes built on them.
//
//   - Topic names and filters: [ValidName], [ValidFilter], [ParseShared] for
//     "$share/{ShareName}/{filter}", and [Match], the reference matcher.
//   - The subscription index, [Index]: a trie keyed by topic level that
//     answers "who is subscribed to this name" for every PUBLISH, picking one
//     member of each matching shared-subscription group, round-robin.
//   - The retained-message index, [Retained]: a trie of retained messages
//     keyed by topic name, walked by filter when a subscription is made.
//
// Normative ids are cited as written in the specification that states them.
// MQTT 3.1.1 and 5.0 number the wildcard rules differently:
//
//	rule                               v3.1.1          v5.0
//	no wildcard in a topic name        [MQTT-4.7.1-1]  [MQTT-4.7.0-1]
//	'#' alone, in the last level       [MQTT-4.7.1-2]  [MQTT-4.7.1-1]
//	'+' occupies a whole level         [MQTT-4.7.1-3]  [MQTT-4.7.1-2]
//
// The other ids used here ([MQTT-4.7.2-1], [MQTT-4.7.3-1..3],
// [MQTT-3.3.2-2]) are the same in both; [MQTT-4.8.2-1] and [MQTT-4.8.2-2]
// (shared subscriptions) exist only in 5.0.
//
// The package is pure: it must not touch the network, the broker, sessions,
// authorization or storage. It knows nothing of vhosts either; a vhost owns
// one Index and one Retained.
package topic
