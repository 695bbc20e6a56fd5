// Package broker is Turnstile's MQTT engine: the server, its virtual hosts, sessions, message
// routing and delivery, wills and the $SYS tree, and the per-connection read and write loops.
//
// It speaks the wire format only through package packet and matches topics only through package
// topic. It knows nothing of sockets beyond net.Conn and net.Listener: listeners are built
// elsewhere and handed to Serve.
//
// Lock order (a goroutine holding a lock may only take locks further down the list):
//
//	client.authMu → Server.mu → Vhost.retainMu → Vhost.mu → session.mu → client.ackMu → client.out.mu
//
// topic.Index and topic.Retained have their own internal locks and are leaves: no broker lock is
// taken while one of them is held. So are the locks of limits, bans and the login log
// (Server.guard: limits.go, loginlog.go), taken under Vhost.mu at most. A client's read loop is
// the only goroutine that tears its connection down; every other goroutine asks with
// client.close and the read loop cleans up.
// See docs/design.md for sessions, takeover, QoS 2 state and wills.
package broker
