// Package store persists the broker's durable state on an embedded pebble database: persistent
// sessions with their identity snapshot and (delayed) wills, their subscriptions (one record
// each), per-session message queues with their in-flight QoS 1/2 state, inbound QoS 2 packet
// ids, the messages those queues refer to, retained messages, the security definitions and the
// opaque records of components beside the broker.
//
// It owns the on-disk format (key layout, a versioned binary encoding of each record, and a
// store format version checked and upgraded at Open: format.go) and the group commit that makes
// writes durable without one fsync per message. It knows nothing of MQTT beyond the shape of
// these records: it does not validate topics, QoS values or expiry, and it never decides what to
// deliver. The broker reaches it only through the small interfaces in
// store.go, so that a cluster-backed store can replace this one.
//
// It must never log a payload, a will message, a property blob or a secret: log lines name
// records by vhost, client id, ticket and sizes only.
//
// Writes are group-committed (db.go): a mutation appends to the batch being formed and returns
// its Ticket without I/O; one committer goroutine commits batch after batch and reports tickets
// durable through Notify. Memory is bounded: while a commit is in progress at most 64 MiB
// accumulate in the next batch; beyond that, mutations wait for the committer (backpressure).
//
// A disk that cannot be written degrades the store instead of crashing it (guardfs.go,
// health.go): the tickets in flight fail, writes are refused and Healthy says why, until a probe
// finds the disk writable again. Open refuses, with one error naming the directory, a store
// that cannot be written. Recovery says what it could not keep (recovery.go, durable.go).
//
// What each fsync mode can lose:
//
//   - FsyncAlways: a ticket is reported durable only after the WAL holding it was fsynced. Nothing
//     reported durable is lost by a process crash, a kernel crash or a power loss (given a disk
//     that honours fsync).
//   - FsyncInterval: a ticket is reported durable once its batch is written to the WAL (in the
//     OS page cache); the WAL is fsynced every Options.Interval. A process crash loses nothing
//     reported durable; a kernel crash or power loss can lose up to Interval of writes.
package store
