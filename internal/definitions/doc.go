// Package definitions reads and writes the RabbitMQ/LavinMQ definitions JSON: users with their
// password hashes and tags, vhosts, permissions and topic permissions, as `rabbitmqctl
// export_definitions`, LavinMQ's /api/definitions and `[main] definitions_file` carry them.
//
// [Parse] decodes strictly (size-limited, each known key checked for its JSON type, errors
// naming the JSON path), accepting what exports differ on: tags as a comma-separated string or
// an array, a missing hashing_algorithm, a null password_hash. Keys Turnstile has no use for
// (queues, exchanges, bindings, policies, parameters, ...) are accepted and listed in
// [Definitions.Ignored]. [Definitions.Validate] reports every problem at once;
// [Definitions.WriteJSON] writes a stable, sorted export that RabbitMQ and LavinMQ import.
//
// The package is pure data: it must not touch the store, the auth user database or the
// permission checker. The caller applies what it returns; the Permission and TopicPermission
// types have the same fields as package acl's, so a plain conversion carries them over.
package definitions
