package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
	"github.com/turnstilemq/turnstile/internal/store"
)

// connectTimeout is how long a new connection may take to send CONNECT.
const connectTimeout = 10 * time.Second

// Reasons a connection closes, for logs. Protocol failures carry a *packet.Error instead.
var (
	errTakenOver    = errors.New("session taken over by a new connection")
	errClientClosed = errors.New("client disconnected")
	errNormalClose  = errors.New("client sent DISCONNECT")
	errKeepAlive    = errors.New("keep alive timeout")
	errShuttingDown = errors.New("server shutting down")
	errAdminClosed  = errors.New("closed by an administrator")
	errNotConnect   = errors.New("first packet is not CONNECT") // [MQTT-3.1.0-1]
	errPanic        = errors.New("internal error")
)

// client is one network connection. Its read loop (readLoop) parses and dispatches packets and is
// the only goroutine that tears the connection down; its write loop (writeLoop) drains out.
type client struct {
	srv      *Server
	conn     net.Conn
	listener string
	remote   string
	inspect  func(net.Conn) ConnMeta // the listener's; what it knows of the connection (connMeta)

	// Set while handling CONNECT, read-only afterwards.
	vhost     *Vhost
	version   packet.Version
	clientID  string
	askedID   string // the client id CONNECT asked for (or was assigned), for refusal events
	keepAlive time.Duration
	// ident is the identity proven at CONNECT, replaced whole by a re-authentication (AUTH or
	// $SYS/uploadToken) on the read loop; other goroutines read it with id().
	ident        atomic.Pointer[auth.Identity]
	connectedAt  time.Time
	receiveMax   uint16 // client's Receive Maximum: our outbound window [MQTT-3.3.4-9]
	maxPacketOut uint32 // client's Maximum Packet Size, 0 = none
	// noProblemInfo: the client asked for no Reason Strings or User Properties outside PUBLISH,
	// CONNACK and DISCONNECT (Request Problem Information 0) [MQTT-3.1.2-29].
	noProblemInfo bool
	sess          atomic.Pointer[session]

	// Owned by the read loop (readLoop and its busy periods, readWork).
	in          inReader          // holds a buffer only while bytes are arriving (readbuf.go)
	work        sync.WaitGroup    // the busy period in progress (readWork)
	workerFn    func()            // starts a worker with c's busy period, bound once (workers.go)
	aliasIn     map[uint16]string // inbound Topic Alias → topic [MQTT-3.3.2-12]
	rs          routeScratch
	deadlineSet int64 // when the read deadline was last moved, unix nanoseconds
	willOnClose bool  // publish the will when the connection ends
	// writerStarted is set once CONNECT is answered and the write loop enabled.
	writerStarted bool

	out         outQueue
	writeLoopFn func() // c.writeLoop, bound once so starting the write loop does not allocate
	writerDone  signal // fired when the write loop has ended for good
	readDone    signal // fired when the read loop stops reading

	// Acknowledgements waiting for the store (acks.go). Lock order: ackMu → out.mu.
	ackMu         sync.Mutex
	acks          []pendingAck
	ackWaitingFor store.Ticket
	flushAcksFn   func() // c.flushAcks, bound once so registering a wait does not allocate

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error // why the connection closed, set once under closeOnce

	// The credential lifecycle (credential.go). authMu orders identity swaps against the
	// expiry timer; lock order: authMu → out.mu.
	authMu            sync.Mutex
	expTimer          clock.Timer            // at the credential's expiry plus the leeway
	noticeTimer       clock.Timer            // $SYS/tokenExpireNotice
	authMethod        string                 // the MQTT 5 Authentication Method of CONNECT, "" for none
	subscribedNotices bool                   // the listener sends token notices only to subscribers
	uploads           uploadWindow           // read loop only
	willDiscard       atomic.Pointer[string] // a close that discards the will says why (revoked, banned, ...)

	// Takeover (vhost.connect): another connection asked for this one's client id. The read
	// loop processes what it has already received until drainUntil, then ends with 0x8E.
	takingOver atomic.Bool
	drainUntil atomic.Int64 // unix nanoseconds
	cleaned    signal       // fired once cleanup has detached the connection from its session

	msgsIn, bytesIn, bytesOut atomic.Uint64
}

func newClient(srv *Server, conn net.Conn, l Listener) *client {
	c := &client{
		srv:         srv,
		conn:        conn,
		listener:    l.Name,
		remote:      remoteString(conn.RemoteAddr()),
		willOnClose: true,
	}
	c.inspect = l.Inspect
	c.subscribedNotices = l.SubscribedNotices
	c.flushAcksFn = c.flushAcks
	c.writeLoopFn = c.writeLoop
	c.workerFn = func() { srv.worker(c) }
	c.out.limit = srv.limits.MaxQueuedBytes
	return c
}

func (c *client) session() *session { return c.sess.Load() }

// connMeta is what the listener knows of the connection (a TLS peer's certificate, a WebSocket's
// Origin), asked when CONNECT is handled: the TLS handshake completed with the first read. It is
// asked each time rather than kept, as only CONNECT needs it.
func (c *client) connMeta() ConnMeta {
	if c.inspect == nil {
		return ConnMeta{}
	}
	return c.inspect(c.conn)
}

// id is the connection's identity in force, nil before CONNECT is accepted.
func (c *client) id() *auth.Identity { return c.ident.Load() }

// logf logs msg about this connection with its stable keys (remote, listener, and once
// connected vhost and client_id). The keys are only formatted when the level is enabled: a
// logger made with With for every connection costs more than the CONNECT itself.
func (c *client) logf(level slog.Level, msg string, args ...any) {
	log := c.srv.log
	if !log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 8+len(args))
	attrs = append(attrs, "remote", c.remote, "listener", c.listener)
	if c.vhost != nil {
		attrs = append(attrs, "vhost", c.vhost.name, "client_id", c.clientID)
	}
	if id := c.id(); id != nil {
		attrs = append(attrs, "user", id.User)
	}
	log.Log(context.Background(), level, msg, append(attrs, args...)...)
}

// close asks the connection to end for reason. For a connected v5 client with a code, a
// DISCONNECT carrying it is queued first [MQTT-3.14.0-1]; the write loop flushes and closes
// the socket, and the read loop, woken by the close, cleans up. Safe from any goroutine.
func (c *client) close(reason error, code packet.ReasonCode) { c.closeWith(reason, code, "") }

// closeWith is close with a Reason String on the DISCONNECT, which is allowed even when the
// client asked for no problem information (3.1.2.11.7).
func (c *client) closeWith(reason error, code packet.ReasonCode, text string) {
	c.closeOnce.Do(func() {
		c.closeErr = reason
		c.closed.Store(true)
		o := &c.out
		o.mu.Lock()
		if code != 0 && c.version == packet.V5 && o.connacked && !o.closing {
			d := &packet.Disconnect{ReasonCode: code}
			d.Props.ReasonString = text
			o.grow()
			o.buf = packet.Append(o.buf, d, c.version) // [MQTT-4.13.2-1]
			o.sentDisconnect = true
		}
		o.closing = true
		o.mu.Unlock()
		now := time.Now()
		c.conn.SetWriteDeadline(now.Add(closeGrace))
		c.conn.SetReadDeadline(now) // wake the read loop; nothing more is processed [MQTT-3.14.4-1]
		c.kickWriter()
	})
}

// serve runs the connection until it ends. The read loop answers CONNECT itself and only then
// enables the write loop: a connection that never gets past CONNECT costs no write loop, and the
// CONNACK leaves without a hand-over to the writer. Once enabled, the write loop runs only while
// there is something to write (outQueue).
func (c *client) serve() {
	c.readLoop()
	if c.writerStarted {
		o := &c.out
		o.mu.Lock()
		closes := o.readerCloses // set once for good: closing accepts nothing more
		if closes {
			o.releaseLocked()
		}
		o.mu.Unlock()
		if closes {
			c.finish(false)
			c.writerDone.fire()
		}
		<-c.writerDone.wait()
		return
	}
	c.flushSync() // a refusal's CONNACK
	c.conn.Close()
}

// flushSync writes what is queued from the read loop, before the write loop exists.
func (c *client) flushSync() error {
	o := &c.out
	o.mu.Lock()
	buf := o.buf
	o.buf = nil // publishers may append while buf is written: it must not share its array
	o.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(closeGrace))
	n, err := c.conn.Write(buf)
	c.bytesOut.Add(uint64(n))
	putOutBuf(buf) // an idle connection keeps no write buffer
	return err
}

// readLoop reads and handles the connection's packets until it closes, and then cleans up.
//
// An idle connection costs its read loop's goroutine, parked in the poller, and little else
// (issue 12). That goroutine's stack must stay at its starting size, and on an idle broker a
// goroutine's stack does not shrink back to it once a deep call has grown it (CONNECT's login,
// routing a PUBLISH, a SUBSCRIBE). So on sockets the read loop only waits: each busy period,
// from the first byte that arrives until a read finds nothing more, runs on a worker
// (readWork, workers.go), and the read loop waits for it to end. On a busy connection a busy
// period lasts as long as bytes keep coming; a quiet one pays a hand-over to a worker per
// wake-up.
// Connections that are not sockets (TLS, WebSocket) have no wait without a read: their packets
// are read on the read loop itself, which waits for the first byte of each in a one-byte read.
func (c *client) readLoop() {
	defer c.cleanup()
	defer c.readDone.fire()
	// The read buffer of the last busy period goes back to the pool: a connection that ends
	// while reading (its DISCONNECT, EOF, an error) would otherwise leave it to the garbage
	// collector, 8 KiB per connection closed. Nothing reads c.in after the read loop.
	defer c.in.release()
	defer c.recoverPanic("read loop")
	c.in.init(c.conn)
	c.conn.SetReadDeadline(time.Now().Add(connectTimeout))
	// On a socket the first busy period starts once CONNECT's first byte has come: a connection
	// that sends nothing holds no worker, only its read loop (workers.go).
	if c.in.canWait() {
		if err := c.in.wait(); err != nil {
			c.close(err, 0)
			return
		}
	}
	c.runWork() // CONNECT, the first busy period; it sets writerStarted once CONNACK is written
	if !c.writerStarted {
		return
	}
	c.enableWriter() // whatever was queued while the CONNACK was written
	for !c.closed.Load() {
		c.moveDeadline()
		if !c.in.canWait() {
			c.readPackets()
			continue
		}
		// The idle point: parked in the poller, holding no read buffer, on a small stack.
		if err := c.in.wait(); err != nil {
			c.fail(err)
			return
		}
		c.runWork()
	}
}

// runWork runs one busy period (readWork) on a worker, a goroutine other than the read loop's
// (workers.go), and waits for it to end.
func (c *client) runWork() {
	c.work.Add(1)
	select {
	case c.srv.workQ <- c: // a worker was waiting for one
	default:
		go c.workerFn()
	}
	c.work.Wait()
}

// readWork is one busy period of the read loop: CONNECT at first, then packets until a read
// finds nothing more. It closes the connection itself when it fails.
func (c *client) readWork() {
	defer c.work.Done()
	defer c.recoverPanic("read loop")
	if c.writerStarted {
		c.readPackets()
		return
	}
	if err := c.readConnect(); err != nil {
		c.close(err, 0)
		return
	}
	if err := c.flushSync(); err != nil {
		c.close(errWrite{err}, 0)
		return
	}
	c.writerStarted = true
}

// readPackets reads and handles packets until the connection closes or, on a socket, a read
// finds nothing more to read.
func (c *client) readPackets() {
	for !c.closed.Load() {
		if err := c.readPacket(); err != nil {
			c.fail(err)
			return
		}
		if more, err := c.in.more(); err != nil {
			c.fail(err)
			return
		} else if !more {
			return
		}
		c.moveDeadline()
	}
}

// fail closes the connection for err, choosing the DISCONNECT reason code from it.
func (c *client) fail(err error) {
	var code packet.ReasonCode
	switch {
	case c.closed.Load():
		return // already closing for its own reason
	case c.takingOver.Load() && (isTimeout(err) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)):
		// Everything received before the takeover was processed: now the new connection may
		// have the session [MQTT-3.1.4-3].
		err, code = errTakenOver, packet.SessionTakenOver
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		err = errClientClosed
	case isTimeout(err):
		err, code = errKeepAlive, packet.KeepAliveTimeout
	case !errors.As(err, &code):
		code = packet.UnspecifiedError
	}
	c.close(err, code)
}

// closeReason names why a connection closed, for metrics and the audit log.
func closeReason(err error) string {
	var code packet.ReasonCode
	switch {
	case errors.Is(err, errNormalClose):
		return "client_disconnect"
	case errors.Is(err, errClientClosed):
		return "connection_lost"
	case errors.Is(err, errKeepAlive):
		return "keepalive_timeout"
	case errors.Is(err, errTakenOver):
		return "taken_over"
	case errors.Is(err, errShuttingDown):
		return "server_shutdown"
	case errors.Is(err, errAdminClosed), errors.Is(err, errVhostDeleted), errors.Is(err, errUserDeleted):
		return "administrative_action"
	case errors.Is(err, errCredentialExpired):
		return "credential_expired"
	case errors.Is(err, errReauthFailed):
		return "reauth_failed"
	case errors.Is(err, errRevoked):
		return "revoked"
	case errors.Is(err, errUploadFlood):
		return "message_rate_too_high"
	case errors.As(err, new(errWrite)):
		return "write_error"
	case errors.As(err, &code):
		return labelOf(code)
	}
	return "other"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// takeoverDrain is how long a connection being taken over keeps reading what its client has
// already sent: bytes already received are read at once, so it only bounds the wait for an idle
// connection. A DISCONNECT read in this window ends the connection normally [MQTT-3.14.4-3].
const takeoverDrain = 50 * time.Millisecond

// takeOver asks the connection to end because another connection claims its client id, and
// waits until its cleanup has run: it first processes what it has already received, then ends
// with DISCONNECT 0x8E. It reports false when ctx ended first. Called by the new connection,
// holding no lock.
func (c *client) takeOver(ctx context.Context) bool {
	until := time.Now().Add(takeoverDrain)
	c.drainUntil.Store(until.UnixNano())
	c.takingOver.Store(true)
	c.conn.SetReadDeadline(until) // the read loop keeps this deadline once takingOver is set
	grace := time.NewTimer(takeoverDrain + closeGrace)
	defer grace.Stop()
	select {
	case <-c.cleaned.wait():
		return true
	case <-grace.C:
		// Still busy (a handler waiting for the store, say): close it outright.
		c.close(errTakenOver, packet.SessionTakenOver)
	case <-ctx.Done():
		return false
	}
	select {
	case <-c.cleaned.wait():
		return true
	case <-ctx.Done():
		return false
	}
}

// recoverPanic ends the connection when one of its goroutines panics: the panic and its stack
// are logged, this connection closes, and nothing else is affected (every lock taken on the
// connection's paths is released by a defer).
func (c *client) recoverPanic(where string) {
	if r := recover(); r != nil {
		c.srv.log.Error("connection goroutine panicked; the connection is closed", "where", where, "remote", c.remote,
			"client_id", c.clientID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.close(errPanic, packet.ImplementationSpecificError)
		c.conn.Close()
	}
}

// discardWill makes the coming close discard the connection's will instead of publishing it,
// for reason (a will suppression reason of package event).
func (c *client) discardWill(reason string) { c.willDiscard.Store(&reason) }

// cleanup runs once, when the read loop ends.
func (c *client) cleanup() {
	defer c.cleaned.fire()
	c.srv.releaseConn(c) // its connection slot, if it took one (limits.go)
	c.close(errClientClosed, 0)
	c.authMu.Lock()
	stopTimer(&c.expTimer)
	stopTimer(&c.noticeTimer)
	c.authMu.Unlock()
	reason := c.closeErr
	if c.vhost != nil {
		// A will is published when the connection closes without a normal DISCONNECT
		// [MQTT-3.1.2-8], and not when the server itself is shutting down (decision: all
		// subscribers are disconnected at the same moment); a revocation, a ban or a kick
		// without will discards it at once.
		fate := willPublish
		switch {
		case !c.willOnClose:
			fate = willDropped
		case c.srv.shuttingDown.Load():
			fate = willDropped
		case c.willDiscard.Load() != nil:
			fate = willDiscarded
		}
		c.vhost.disconnect(c, fate)
		c.logf(slog.LevelInfo, "client disconnected", "reason", reason.Error())
		c.srv.observe(event.Event{Kind: event.Disconnected, Listener: c.listener, Remote: c.remote, Vhost: c.vhost.name,
			ClientID: c.clientID, User: c.id().User, Identity: c.id(), Reason: closeReason(reason), Detail: reason.Error()})
	} else {
		c.logf(slog.LevelDebug, "connection closed before CONNECT completed", "reason", reason.Error())
	}
}

// readBody reads the Remaining Length bytes of a packet, after checking the size against
// max_packet_size before anything is allocated (3.2.2.3.6, [MQTT-3.2.2-15]; STYLE practice 4). A
// PUBLISH gets a buffer of its own (it becomes the message's shared payload), and so do CONNECT
// and AUTH, whose Authentication Data the codec does not copy. Other packets are decoded in the
// read buffer itself when they fit in it: their decoded form copies what it keeps, and the bytes
// stay in place until the read loop reads again, after the packet was handled.
func (c *client) readBody(h packet.FixedHeader) ([]byte, error) {
	if total := h.Size() + h.Remaining; total > c.srv.limits.MaxPacket {
		return nil, &packet.Error{Code: packet.PacketTooLarge, Field: h.Type.String(),
			Err: errors.New("larger than max_packet_size")}
	}
	var body []byte
	var err error
	switch {
	case h.Type == packet.PUBLISH || h.Type == packet.CONNECT || h.Type == packet.AUTH || h.Remaining > readBufferSize:
		body, err = readGrowing(&c.in, nil, h.Remaining)
	default:
		if body, err = c.in.Peek(h.Remaining); err == nil {
			c.in.Discard(h.Remaining)
		}
	}
	if err != nil {
		return nil, err
	}
	c.bytesIn.Add(uint64(h.Size() + h.Remaining))
	return body, nil
}

// readChunk is how much memory a packet body gets before its bytes arrive: a claimed length
// above it is allocated step by step, doubling as the bytes come, so a client that claims a
// large packet and sends nothing holds no more than this (issue 11, STYLE practice 4).
const readChunk = 32 << 10

// readGrowing reads n bytes into buf (reused when it is large enough), allocating at most
// readChunk ahead of the bytes actually received.
func readGrowing(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n || n <= readChunk {
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	if cap(buf) < readChunk {
		buf = make([]byte, 0, readChunk)
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), n-len(buf)))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// moveDeadline moves the read deadline before the read loop reads a packet.
func (c *client) moveDeadline() {
	if c.keepAlive > 0 && !c.takingOver.Load() {
		// The deadline is 1.5 times Keep Alive [MQTT-3.1.2-24]; it is moved at most every
		// quarter period so busy connections do not reset a timer per packet.
		if now := time.Now(); now.UnixNano()-c.deadlineSet > int64(c.keepAlive/4) {
			c.deadlineSet = now.UnixNano()
			c.conn.SetReadDeadline(now.Add(c.keepAlive * 3 / 2))
			if c.takingOver.Load() { // a takeover began meanwhile: its deadline stands
				c.conn.SetReadDeadline(time.Unix(0, c.drainUntil.Load()))
			}
			if c.closed.Load() { // so did a close, whose wake-up this deadline may have undone
				c.conn.SetReadDeadline(now)
			}
		}
	}
}

// readPacket reads and handles one packet after CONNECT.
func (c *client) readPacket() error {
	h, err := packet.ReadFixedHeader(&c.in)
	if err != nil {
		return err
	}
	body, err := c.readBody(h)
	if err != nil {
		return err
	}
	switch h.Type {
	case packet.PUBLISH:
		var pub packet.Publish // on the stack: a busy period's goroutine holds it, not the client
		if err := packet.DecodePublish(h, body, c.version, &pub); err != nil {
			return err
		}
		return c.handlePublish(&pub)
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
		var a packet.Ack // on the stack too: one per QoS 1/2 message, 300 bytes with its Properties
		if err := packet.DecodeAck(h, body, c.version, &a); err != nil {
			return err
		}
		switch h.Type {
		case packet.PUBACK, packet.PUBCOMP:
			c.session().acked(c, h.Type, a.PacketID, a.ReasonCode)
		case packet.PUBREC:
			c.handlePubrec((*packet.Pubrec)(&a))
		default:
			c.handlePubrel((*packet.Pubrel)(&a))
		}
		return nil
	case packet.DISCONNECT:
		var d packet.Disconnect // on the stack: one per connection that ends cleanly
		if err := packet.DecodeDisconnect(h, body, c.version, &d); err != nil {
			return err
		}
		return c.handleDisconnect(&d)
	case packet.CONNECT:
		return &packet.Error{Code: packet.ProtocolError, Field: "CONNECT", Err: errors.New("second CONNECT")} // [MQTT-3.1.0-2]
	}
	p, err := packet.Decode(h, body, c.version)
	if err != nil {
		return err
	}
	switch p := p.(type) {
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		c.handleUnsubscribe(p)
	case *packet.Pingreq:
		c.pong() // [MQTT-3.12.4-1]
	case *packet.Auth:
		return c.handleAuth(p)
	default: // CONNACK, SUBACK, UNSUBACK, PINGRESP go only from server to client
		return &packet.Error{Code: packet.ProtocolError, Field: h.Type.String(), Err: errors.New("packet type not sent by clients")}
	}
	return nil
}

// newClientID makes a client identifier for a client that sent none [MQTT-3.1.3-6], [MQTT-3.2.2-16].
func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "turnstile-" + hex.EncodeToString(b[:])
}
