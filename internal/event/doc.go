// Package event is the seam between the engine and whatever watches it: the broker, the
// authentication chain and the management API report what happens to connections, logins,
// authorization and wills as Events to one Observer, and metrics, the audit log and $SYS
// subscribe to it instead of being called from inside the engine.
//
// An Event is a value with no secret in it: never a password, a token or a payload. Observers
// run on the reporting goroutine, outside every lock of the engine, and must not block: an
// observer that does I/O queues the event (see package audit).
package event
