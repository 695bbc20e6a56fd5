// Package listener owns Turnstile's sockets: plain TCP, TLS, WebSocket (ws and
// wss) and unix sockets. Every constructor returns a net.Listener whose Accept
// yields net.Conn values with working deadlines and a RemoteAddr that is the
// real peer address (never a header such as X-Forwarded-For), so the broker
// serves every kind the same way through srv.Serve(ln, name).
//
// It also holds the transport facts that the auth layer needs: PeerCN (the
// verified client-certificate Common Name), IsLoopback (for the default user)
// and WebSocketOrigin (for telling browser clients apart).
//
// The package knows nothing of MQTT beyond the WebSocket transport rules of
// MQTT 5.0 §6 ([MQTT-6.0.0-1..4]): it must not import the packet, broker,
// auth, config or store packages. Configuration keys appear only in error
// messages, so that the caller can report them.
package listener
